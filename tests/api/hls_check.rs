//! What a real HLS client sees: the master and media playlists and segments fetched over HTTP
//! through the signed URLs, checked with FFmpeg's own tools (ffprobe, the HLS demuxer) and a
//! look at the first NAL units of each segment.

use std::{path::Path, process::Command};

use url::Url;

use crate::helpers::TestApp;

/// One `#EXT-X-STREAM-INF` of a master playlist with its URI.
#[derive(Debug)]
pub(crate) struct Variant {
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) uri: String,
}

impl Variant {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The variants of a master playlist.
pub(crate) fn variants(master: &str) -> Vec<Variant> {
    let mut out = Vec::new();
    let mut lines = master.lines();
    while let Some(line) = lines.next() {
        let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") else {
            continue;
        };
        let uri = lines.next().unwrap_or_default().to_owned();
        out.push(Variant {
            attributes: attributes(attrs),
            uri,
        });
    }
    out
}

/// `KEY=value` pairs of an attribute list, quotes removed (commas inside quotes kept).
fn attributes(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((key.to_owned(), value.to_owned()));
        rest = next.strip_prefix(',').unwrap_or(next);
    }
    out
}

/// Segment URIs of a media playlist, with their `#EXTINF` durations.
pub(crate) fn segments(playlist: &str) -> Vec<(f64, String)> {
    let mut out = Vec::new();
    let mut duration = 0.0;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d
                .split(',')
                .next()
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0);
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push((duration, line.to_owned()));
        }
    }
    out
}

pub(crate) async fn fetch(app: &TestApp, url: &Url) -> Vec<u8> {
    let response = app.http.get(url.clone()).send().await.expect("fetch");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("bytes").to_vec()
}

/// Runs an FFmpeg tool; returns (success, stdout, stderr).
pub(crate) fn run(tool: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(tool)
        .args(["-hide_banner", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg tools run");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Video frames of `file` (or URL) as `(pts_time, key_frame, pict_type)`.
pub(crate) fn video_frames(file: &str) -> Vec<(f64, bool, String)> {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time,key_frame,pict_type",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    assert!(ok, "ffprobe {file}: {err}");
    // ffprobe writes the entries in its own order: key_frame, pts_time, pict_type.
    // ffprobe writes the entries in its own order (key_frame, pts_time, pict_type), and an
    // empty line or field for side data.
    out.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').filter(|f| !f.is_empty()).collect();
            match fields.as_slice() {
                [key, pts, kind, ..] => Some((
                    pts.parse().expect("pts_time"),
                    *key == "1",
                    (*kind).to_owned(),
                )),
                _ => None,
            }
        })
        .collect()
}

/// Decodes `file` completely; any decoder complaint fails.
pub(crate) fn decodes_cleanly(file: &str) {
    let (ok, _, err) = run("ffmpeg", &["-xerror", "-i", file, "-f", "null", "-"]);
    assert!(
        ok && err.trim().is_empty(),
        "{file} does not decode on its own: {err}"
    );
}

/// The NAL unit types of the first video sample of a fragmented-MP4 segment (4-byte lengths, as
/// x264 writes them), up to and including the first slice.
pub(crate) fn first_nal_types(segment: &[u8]) -> Vec<u8> {
    let at = segment
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    let mut pos = at + 4;
    let mut types = Vec::new();
    while pos + 5 <= segment.len() {
        let len = u32::from_be_bytes(segment[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let nal_type = segment[pos + 4] & 0x1f;
        types.push(nal_type);
        if (1..=5).contains(&nal_type) || len == 0 {
            break;
        }
        pos += 4 + len;
    }
    types
}

/// `init` + `segment` as one file a decoder can open on its own.
pub(crate) fn standalone(dir: &Path, name: &str, init: &[u8], segment: &[u8]) -> String {
    let path = dir.join(name);
    let mut bytes = init.to_vec();
    bytes.extend_from_slice(segment);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// `avc1.PPCCLL` profile and level as ffprobe reads them from an MP4: (profile name, level).
pub(crate) fn profile_and_level(file: &str) -> (String, u32) {
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=profile,level",
            "-of",
            "csv=p=0",
            file,
        ],
    );
    assert!(ok, "{err}");
    let (profile, level) = out.trim().rsplit_once(',').expect("profile,level");
    (profile.to_owned(), level.parse().expect("level"))
}

#[test]
fn attribute_lists_keep_commas_inside_quotes() {
    assert_eq!(
        attributes("BANDWIDTH=1,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=2x2"),
        vec![
            ("BANDWIDTH".to_owned(), "1".to_owned()),
            ("CODECS".to_owned(), "avc1.64001f,mp4a.40.2".to_owned()),
            ("RESOLUTION".to_owned(), "2x2".to_owned()),
        ]
    );
}
