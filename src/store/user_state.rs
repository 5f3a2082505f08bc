//! Per-user state of videos: favorites and watch progress.

use super::{Store, UserStateRows, VideoRecord, videos::VIDEO_SELECT};
use crate::{
    domain::{Timestamp, UserId, VideoId},
    error::AppResult,
};

impl Store {
    /// Marks a favorite (idempotent); false if the video does not exist.
    pub async fn add_favorite(&self, user: UserId, video: VideoId) -> AppResult<bool> {
        let result = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO favorites (user_id, video_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, video_id) DO NOTHING",
            )
            .bind(user)
            .bind(video)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => {
                self.user_state_changed(user).await;
                Ok(true)
            }
            Err(e) if super::is_foreign_key_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a favorite (idempotent).
    pub async fn remove_favorite(&self, user: UserId, video: VideoId) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM favorites WHERE user_id = $1 AND video_id = $2")
                .bind(user)
                .bind(video)
                .execute(pool)
                .await?;
        });
        self.user_state_changed(user).await;
        Ok(())
    }

    /// Records a playback position (upsert); false if the video does not exist.
    pub async fn save_progress(
        &self,
        user: UserId,
        video: VideoId,
        position: f64,
    ) -> AppResult<Option<Timestamp>> {
        let now = Timestamp::now();
        let result = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO watch_progress (user_id, video_id, position, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, video_id) \
                 DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(video)
            .bind(position)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => {
                self.user_state_changed(user).await;
                Ok(Some(now))
            }
            Err(e) if super::is_foreign_key_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's favorites and positions in one round trip: `(video, Some(position))` for
    /// progress rows, `(video, None)` for favorites.
    pub async fn user_state(&self, user: UserId) -> AppResult<UserStateRows> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT video_id, NULL AS position FROM favorites WHERE user_id = $1 \
                 UNION ALL \
                 SELECT video_id, position FROM watch_progress WHERE user_id = $1",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Videos the user started and has not finished (position > 0 and, when the duration is
    /// known, before the last 5 %), most recently watched first.
    pub async fn continue_watching(
        &self,
        user: UserId,
        limit: i64,
        offset: i64,
    ) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{} JOIN watch_progress p ON p.video_id = v.id WHERE p.user_id = $1 \
             AND p.position > 0 AND (v.duration <= 0 OR p.position < v.duration * 0.95) \
             ORDER BY p.updated_at DESC, v.id DESC LIMIT {limit} OFFSET {offset}",
            *VIDEO_SELECT
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, VideoRecord>(sqlx::AssertSqlSafe(sql))
                .bind(user)
                .fetch_all(pool)
                .await?
        }))
    }
}
