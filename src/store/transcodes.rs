//! Transcode claims: which job holds a video, its heartbeat, and how its hold ends. The claim
//! token fences every write, so a job that lost its claim (deleted video, takeover after it
//! went quiet) changes nothing.

use std::sync::LazyLock;

use super::Store;
use crate::{
    domain::{Media, Rung, Timestamp, VideoId, VideoStatus},
    error::AppResult,
};

/// What a claim of a transcode found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The job holds the video now.
    Started(TranscodeClaim),
    /// A live job holds it.
    Busy,
    /// Nothing to do: finished, failed, deleted or without a source.
    Done,
}

/// A transcode that may start: where the source is and how often it was tried.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TranscodeClaim {
    /// Source file, relative to MEDIA_DIR.
    pub video_file: String,
    /// Attempts including this one.
    pub transcode_attempts: i64,
}

impl Store {
    /// Points a video at its uploaded source.
    pub async fn set_video_source(&self, id: VideoId, video_file: &str) -> AppResult<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query("UPDATE videos SET video_file = $1, updated_at = $2 WHERE id = $3")
                .bind(video_file)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        self.catalog_changed().await;
        Ok(())
    }

    /// Gives a transcode of video `id` to the job `token`: a pending video, or a processing one
    /// whose job has not shown it is alive since `stale_before` (its worker died). The attempt
    /// is counted.
    pub async fn claim_transcode(
        &self,
        id: VideoId,
        token: &str,
        stale_before: Timestamp,
    ) -> AppResult<Claim> {
        let now = Timestamp::now();
        let claimed = on_pool!(self, pool => {
            sqlx::query_as::<_, TranscodeClaim>(
                "UPDATE videos SET status = 'processing', status_reason = '', \
                 transcode_attempts = transcode_attempts + 1, claim_token = $1, claimed_at = $2, \
                 updated_at = $2 \
                 WHERE id = $3 AND video_file <> '' AND (status = 'pending' OR \
                 (status = 'processing' AND (claimed_at IS NULL OR claimed_at < $4))) \
                 RETURNING video_file, transcode_attempts",
            )
            .bind(token)
            .bind(now)
            .bind(id)
            .bind(stale_before)
            .fetch_optional(pool)
            .await?
        });
        if let Some(claim) = claimed {
            self.catalog_changed().await;
            return Ok(Claim::Started(claim));
        }
        let status: Option<(VideoStatus,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status FROM videos WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(match status {
            Some((VideoStatus::Processing,)) => Claim::Busy,
            _ => Claim::Done,
        })
    }

    /// Whether the job `token` holds video `id` and showed it is alive since `fresh_after`.
    pub async fn live_claim(
        &self,
        id: VideoId,
        token: &str,
        fresh_after: Timestamp,
    ) -> AppResult<bool> {
        let row: Option<(VideoId,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM videos WHERE id = $1 AND claim_token = $2 \
                 AND status = 'processing' AND claimed_at >= $3",
            )
            .bind(id)
            .bind(token)
            .bind(fresh_after)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    /// Shows the job `token` is alive; false when it no longer holds the video (deleted, or
    /// taken over after it went quiet).
    pub async fn heartbeat_transcode(&self, id: VideoId, token: &str) -> AppResult<bool> {
        let now = Timestamp::now();
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET claimed_at = $1 \
                 WHERE id = $2 AND claim_token = $3 AND status = 'processing'",
            )
            .bind(now)
            .bind(id)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Records a finished transcode of the job `token`; false if the video was deleted or
    /// another job holds it now (then these outputs are not used).
    pub async fn finish_transcode(
        &self,
        id: VideoId,
        token: &str,
        media: &Media,
        duration: f64,
    ) -> AppResult<bool> {
        let now = Timestamp::now();
        let result = on_pool!(self, pool => {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(FINISH_SQL.as_str()))
                .bind(id)
                .bind(token)
                .bind(&media.poster)
                .bind(&media.vtt_file)
                .bind(&media.hls)
                .bind(media.renditions.to_json())
                .bind(duration)
                .bind(now);
            for rung in Rung::ALL {
                query = query.bind(media.rungs.get(*rung));
            }
            query.execute(pool).await?.rows_affected()
        });
        if result > 0 {
            self.catalog_changed().await;
        }
        Ok(result > 0)
    }

    /// Ends the job `token`'s hold with `status` (`pending` to retry, `failed` for good) and a
    /// reason; false if it no longer held the video.
    pub async fn set_transcode_status(
        &self,
        id: VideoId,
        token: &str,
        status: VideoStatus,
        reason: &str,
    ) -> AppResult<bool> {
        self.end_hold(id, token, status, reason, 0).await
    }

    /// Gives the job `token`'s hold back at shutdown: the video pending again, and the run not
    /// counted as an attempt (a restart is not the source's fault); false if it no longer held
    /// the video.
    pub async fn release_transcode(&self, id: VideoId, token: &str) -> AppResult<bool> {
        self.end_hold(id, token, VideoStatus::Pending, "", 1).await
    }

    /// Ends a hold, taking `refund` runs off the attempts.
    async fn end_hold(
        &self,
        id: VideoId,
        token: &str,
        status: VideoStatus,
        reason: &str,
        refund: i64,
    ) -> AppResult<bool> {
        let now = Timestamp::now();
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET status = $1, status_reason = $2, updated_at = $3, \
                 claim_token = '', transcode_attempts = transcode_attempts - $4 \
                 WHERE id = $5 AND claim_token = $6 AND status = 'processing'",
            )
            .bind(status)
            .bind(reason)
            .bind(now)
            .bind(refund)
            .bind(id)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed > 0 {
            self.catalog_changed().await;
        }
        Ok(changed > 0)
    }

    /// How many encoder runs of video `id` counted as attempts: every claim, less the runs
    /// given back at shutdown.
    pub async fn transcode_attempts(&self, id: VideoId) -> AppResult<Option<i64>> {
        let row: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT transcode_attempts FROM videos WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(n,)| n))
    }

    /// Videos whose transcode has not finished (for the start-up sweep).
    pub async fn unfinished_videos(&self) -> AppResult<Vec<VideoId>> {
        let rows: Vec<(VideoId,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM videos WHERE status IN ('pending', 'processing') \
                 AND video_file <> '' ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

/// The finish update: `$1` id, `$2` token, `$3`… poster, thumbnails, HLS, renditions, duration,
/// time, then one file per [`Rung`].
static FINISH_SQL: LazyLock<String> = LazyLock::new(|| {
    let rungs: Vec<String> = Rung::ALL
        .iter()
        .enumerate()
        .map(|(i, rung)| format!("{} = ${}", rung.column(), i + 9))
        .collect();
    format!(
        "UPDATE videos SET status = 'ready', status_reason = '', poster = $3, vtt_file = $4, \
         hls = $5, renditions = $6, duration = $7, updated_at = $8, claim_token = '', {} \
         WHERE id = $1 AND claim_token = $2 AND status = 'processing'",
        rungs.join(", ")
    )
});
