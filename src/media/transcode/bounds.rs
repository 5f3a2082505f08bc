//! What a job may spend on a source: bytes written and wall time.

use std::{fs, path::Path};

use super::{MediaError, Probe, TranscodeOptions};

/// What a job may spend on a source: bytes written and wall time, both from the probed
/// duration (and, for bytes, the source's size), so a crafted file cannot fill the disk or hold
/// a worker for ever.
pub(super) struct Bounds {
    pub(super) max_bytes: u64,
    pub(super) deadline: std::time::Instant,
    /// Frames after this (seconds from the start) are dropped: a timestamp jump past the
    /// probed duration is not filled with copies.
    pub(super) last_frame_at: f64,
}

impl Bounds {
    pub(super) fn new(input: &Path, probe: &Probe, options: &TranscodeOptions) -> Self {
        let ladder_kbps: u64 = options
            .ladder
            .iter()
            .map(|s| u64::from(s.video_kbps) + u64::from(options.audio_kbps))
            .sum();
        // A declared duration can be anything: at most a few days counts.
        let seconds = probe.duration.clamp(1.0, 400_000.0);
        // Four times what the ladder's bitrates make of the duration, or of the source, plus
        // room for posters, sprites and playlists.
        let by_duration = crate::numeric::to_u64(ladder_kbps as f64 * 1000.0 / 8.0 * seconds * 4.0);
        let by_source = fs::metadata(input).map_or(0, |m| m.len()).saturating_mul(4);
        Self {
            max_bytes: by_duration.max(by_source) + (64 << 20),
            deadline: std::time::Instant::now()
                + std::time::Duration::from_secs_f64(120.0 + seconds * 20.0),
            last_frame_at: probe.duration + (probe.duration * 0.1).max(1.0),
        }
    }

    pub(super) fn check(&self, out_dir: &Path) -> Result<(), MediaError> {
        if std::time::Instant::now() > self.deadline {
            return Err(MediaError::Exceeded(
                "it took far longer than its duration allows".to_owned(),
            ));
        }
        let written = dir_size(out_dir);
        if written > self.max_bytes {
            return Err(MediaError::Exceeded(format!(
                "its outputs grew past {} MB",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }
}

/// Bytes of the files below `dir`.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => pending.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_past_its_output_budget_or_deadline_stops_with_the_reason() {
        let dir = tempfile::TempDir::new().expect("dir");
        fs::create_dir_all(dir.path().join("hls")).expect("mkdir");
        fs::write(dir.path().join("hls/segment.m4s"), vec![0u8; 4096]).expect("write");
        let within = Bounds {
            max_bytes: 1 << 20,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
            last_frame_at: 1.0,
        };
        assert!(within.check(dir.path()).is_ok());
        let too_big = Bounds {
            max_bytes: 1024,
            ..within
        };
        assert!(
            matches!(too_big.check(dir.path()), Err(MediaError::Exceeded(why)) if why.contains("grew past"))
        );
        let too_long = Bounds {
            max_bytes: 1 << 20,
            deadline: std::time::Instant::now() - std::time::Duration::from_secs(1),
            last_frame_at: 1.0,
        };
        assert!(
            matches!(too_long.check(dir.path()), Err(MediaError::Exceeded(why)) if why.contains("longer"))
        );
    }
}
