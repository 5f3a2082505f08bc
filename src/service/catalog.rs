//! Catalog use cases: listing, searching, grouping and fetching videos (cached), admin writes,
//! and per-user favorites and watch progress. Shared lists are cached without per-user fields;
//! each caller's favorites and progress are laid over them from that caller's own cache scope.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
};

use crate::{
    cache::{CATALOG, Cache, user_scope},
    domain::{Genre, Language, Ordering, PageToken, Rate, Timestamp, UserId, VideoId, VideoMeta},
    error::{AppError, AppResult},
    ratelimit::{Limit, Mode, RateLimiter},
    service::{Caller, ClientInfo, admission::Prefetch},
    store::{Store, UserStateRows, VideoFilter, VideoQuery, VideoRecord},
};
/// How many videos "recent" returns.
pub(crate) const RECENT_COUNT: i64 = 5;
/// Default and maximum page sizes.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A video as one caller sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoView {
    /// The shared record (shared with the cache: serving a cached list copies no strings).
    pub record: Arc<VideoRecord>,
    /// Whether the caller marked it.
    pub is_favorite: bool,
    /// The caller's position in seconds.
    pub progress: f64,
    /// Whether the caller may see the uploader's e-mail, phone and address (superusers only:
    /// viewers, guests included, see the uploader's id).
    pub uploader_contact: bool,
}

/// A page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The videos.
    pub videos: Vec<VideoView>,
    /// Cursor of the next page, if any.
    pub next: Option<PageToken>,
    /// Number of matching videos.
    pub total: i64,
}

/// How the caller pages through a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// After a cursor (None = first page).
    Cursor(Option<PageToken>),
    /// 1-based page number (the REST API's `page`).
    Number(i64),
}

/// A list request, parsed.
#[derive(Clone, Debug)]
pub struct ListRequest {
    /// Filter (favorites_of is set from the caller by `only_favorites`).
    pub filter: VideoFilter,
    /// Only the caller's favorites.
    pub only_favorites: bool,
    /// Order.
    pub ordering: Ordering,
    /// Page size (1..=100).
    pub page_size: i64,
    /// Paging.
    pub paging: Paging,
}

/// Which fields an update changes (`None` = keep).
#[derive(Clone, Debug, Default)]
pub struct VideoPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New author.
    pub author: Option<String>,
    /// New genre (`Some(None)` clears it).
    pub genre: Option<Option<Genre>>,
    /// New language (`Some(None)` clears it).
    pub language: Option<Option<Language>>,
}

/// How often an update is recomputed when other writes keep landing first.
const UPDATE_ATTEMPTS: usize = 5;

impl VideoPatch {
    /// Whether it changes nothing.
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.author.is_none()
            && self.genre.is_none()
            && self.language.is_none()
    }

    /// The metadata `current` has with this patch applied, validated.
    fn applied_to(&self, current: &VideoRecord) -> AppResult<VideoMeta> {
        let genre = self.genre.unwrap_or(current.genre);
        let language = self.language.unwrap_or(current.language);
        VideoMeta::parse(&crate::domain::RawVideoMeta {
            title: self.title.as_deref().unwrap_or(&current.title),
            description: self.description.as_deref().unwrap_or(&current.description),
            author: self.author.as_deref().unwrap_or(&current.author),
            genre: genre.map_or("", Genre::as_str),
            language: language.map_or("", Language::as_str),
        })
        .map_err(AppError::Validation)
    }
}

/// Per-user and per-address limits of the video endpoints.
#[derive(Clone, Copy, Debug)]
pub struct VideoLimits {
    /// Anonymous calls per address.
    pub anon: Rate,
    /// Calls per user, short window.
    pub user: Rate,
    /// Calls per user, per day.
    pub user_day: Rate,
}

/// Catalog use cases; cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    cache: Cache,
    limiter: RateLimiter,
    limits: VideoLimits,
    media_dir: PathBuf,
}

impl Catalog {
    /// Wires the catalog.
    pub fn new(
        store: Store,
        cache: Cache,
        limiter: RateLimiter,
        limits: VideoLimits,
        media_dir: PathBuf,
    ) -> Self {
        Self {
            store,
            cache,
            limiter,
            limits,
            media_dir,
        }
    }

    /// Throttles an anonymous (or unauthenticated) call by address.
    pub async fn throttle_anonymous(&self, client: ClientInfo) -> AppResult<()> {
        let ip = client.key();
        self.limiter
            .check(&format!("video:anon:{ip}"), self.limits.anon, Mode::Consume)
            .await
    }

    /// What a call of `user` reads and is charged with its session check: the versions of the
    /// cache scopes catalog reads use, and (when `charge`) the user's limits, short and daily.
    pub fn prefetch(&self, user: UserId, charge: bool) -> Prefetch {
        let scopes = if self.cache.is_enabled() {
            vec![CATALOG.to_owned(), user_scope(user)]
        } else {
            Vec::new()
        };
        let limits = if charge {
            vec![
                Limit {
                    key: format!("video:user:{user}"),
                    rate: self.limits.user,
                },
                Limit {
                    key: format!("video:user-day:{user}"),
                    rate: self.limits.user_day,
                },
            ]
        } else {
            Vec::new()
        };
        Prefetch { scopes, limits }
    }

    // ---- reads -------------------------------------------------------------------------------

    /// A validator of what `caller` is shown for a request (`request`: its canonical bytes and
    /// whatever else shapes the answer): it changes with every catalog write and every change
    /// of the caller's favorites or progress. Empty when the cache is off (nothing to validate
    /// against). Callers compute it *before* reading, so an answer is never older than its tag.
    pub async fn etag(&self, caller: &Caller, request: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let user = user_scope(caller.user.user_id());
        let Some(versions) = self
            .cache
            .versions(caller.versions.as_ref(), &[CATALOG, &user])
            .await
        else {
            return String::new();
        };
        let digest = Sha256::new()
            .chain_update(versions.as_bytes())
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(request)
            .finalize();
        hex::encode(&digest[..16])
    }

    /// One page of the catalog.
    pub async fn list(&self, caller: &Caller, request: ListRequest) -> AppResult<ListPage> {
        let mut filter = request.filter;
        if request.only_favorites {
            filter.favorites_of = Some(caller.user.user_id());
        }
        let limit = request.page_size.clamp(1, MAX_PAGE_SIZE);
        let (after, offset) = match request.paging {
            Paging::Cursor(token) => (token, 0),
            Paging::Number(n) if n >= 1 => (None, (n - 1).saturating_mul(limit)),
            Paging::Number(_) => return Err(AppError::field("page", "Invalid page.")),
        };
        // One extra row tells whether a next page exists.
        let query = VideoQuery {
            filter,
            ordering: request.ordering,
            after,
            offset,
            limit: limit + 1,
        };
        // A favorites list depends on this user's favorites *and* on the catalog: not cached,
        // so neither a favorite change nor a catalog write can leave it stale. Uncached reads
        // fetch the caller's state in the same round trip.
        let (page, state) = if query.filter.favorites_of.is_some() || !self.cache.is_enabled() {
            let (page, rows) = self
                .store
                .list_videos_with_state(&query, caller.user.user_id())
                .await?;
            (SharedPage::from(page), Some(UserState::from(rows)))
        } else {
            let page = self
                .cache
                .get_or_load(
                    caller.versions.as_ref(),
                    CATALOG,
                    &cache_key(&query),
                    || async { self.store.list_videos(&query).await.map(SharedPage::from) },
                )
                .await?;
            (page, None)
        };
        let mut videos = page.videos;
        let next = if i64::try_from(videos.len()).unwrap_or(i64::MAX) > limit {
            videos.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            videos.last().map(|last| PageToken {
                ordering: request.ordering,
                rank: match (&query.filter.search, request.ordering) {
                    (Some(search), Ordering::Relevance) => {
                        search.rank(&crate::domain::fold_search(&last.title))
                    }
                    _ => 0,
                },
                micros: match request.ordering.column() {
                    "updated_at" => last.updated_at.micros(),
                    _ => last.uploaded_at.micros(),
                },
                id: last.id,
            })
        } else {
            None
        };
        let state = match state {
            Some(state) => state,
            None => self.state(caller).await?,
        };
        Ok(ListPage {
            videos: overlay(videos, state, caller),
            next,
            total: page.total,
        })
    }

    /// One video.
    pub async fn get(&self, caller: &Caller, id: VideoId) -> AppResult<VideoView> {
        let record = self
            .cache
            .get_or_load(
                caller.versions.as_ref(),
                CATALOG,
                &format!("video:{id}"),
                || async { Ok(self.store.video(id).await?.map(Arc::new)) },
            )
            .await?
            .ok_or(AppError::NotFound("video"))?;
        Ok(self.views(caller, vec![record]).await?.remove(0))
    }

    /// The newest videos, without `exclude`.
    pub async fn recent(
        &self,
        caller: &Caller,
        exclude: Option<VideoId>,
    ) -> AppResult<Vec<VideoView>> {
        let key = format!("recent:{}", exclude.map_or(0, VideoId::get));
        let records = self
            .cache
            .get_or_load(caller.versions.as_ref(), CATALOG, &key, || async {
                Ok(shared(
                    self.store.recent_videos(exclude, RECENT_COUNT).await?,
                ))
            })
            .await?;
        self.views(caller, records).await
    }

    /// Every genre with its videos, newest first.
    pub async fn categorized(&self, caller: &Caller) -> AppResult<Vec<(Genre, Vec<VideoView>)>> {
        let records = self
            .cache
            .get_or_load(caller.versions.as_ref(), CATALOG, "categorized", || async {
                Ok(shared(self.store.videos_with_genre().await?))
            })
            .await?;
        let views = self.views(caller, records).await?;
        Ok(Genre::ALL
            .iter()
            .map(|genre| {
                let of_genre = views
                    .iter()
                    .filter(|v| v.record.genre == Some(*genre))
                    .cloned()
                    .collect();
                (*genre, of_genre)
            })
            .collect())
    }

    /// The caller's started, unfinished videos, most recently watched first.
    pub async fn continue_watching(
        &self,
        caller: &Caller,
        page_size: i64,
        offset: i64,
    ) -> AppResult<Vec<VideoView>> {
        let records = self
            .store
            // One more than the largest page: room for the caller's look-ahead row.
            .continue_watching(
                caller.user.user_id(),
                page_size.clamp(1, MAX_PAGE_SIZE + 1),
                offset.max(0),
            )
            .await?;
        self.views(caller, shared(records)).await
    }

    // ---- admin writes ------------------------------------------------------------------------

    /// Creates a video from metadata (superusers only).
    pub async fn create(&self, caller: &Caller, meta: VideoMeta) -> AppResult<VideoView> {
        caller.require_superuser()?;
        let record = self
            .store
            .create_video(&meta, caller.user.user_id())
            .await?;
        tracing::info!(video_id = %record.id, "video created");
        Ok(VideoView {
            record: Arc::new(record),
            is_favorite: false,
            progress: 0.0,
            uploader_contact: caller.user.is_superuser,
        })
    }

    /// Fails unless the caller may write the catalog.
    pub fn require_admin(&self, caller: &Caller) -> AppResult<()> {
        caller.require_superuser()
    }

    /// Changes the fields given in `patch` (superusers only); an empty patch changes nothing.
    /// With `expected` (the version the caller read; `Some(None)` for a tag that names no
    /// version), a video changed since is refused ([`AppError::EtagMismatch`]); without, a concurrent change is merged: the write is
    /// checked against the row it was computed from and recomputed if another landed first,
    /// so two admins changing different fields both keep their change.
    pub async fn update(
        &self,
        caller: &Caller,
        id: VideoId,
        patch: VideoPatch,
        expected: Option<Option<Timestamp>>,
    ) -> AppResult<VideoView> {
        caller.require_superuser()?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .store
                .video(id)
                .await?
                .ok_or(AppError::NotFound("video"))?;
            // Validation first: a bad body is a 400 whatever its precondition says.
            let meta = (!patch.is_empty())
                .then(|| patch.applied_to(&current))
                .transpose()?;
            if expected.is_some_and(|version| version != Some(current.updated_at)) {
                return Err(AppError::EtagMismatch);
            }
            let Some(meta) = meta else {
                return Ok(self.views(caller, vec![Arc::new(current)]).await?.remove(0));
            };
            if let Some(record) = self
                .store
                .update_video(id, &meta, current.updated_at)
                .await?
            {
                tracing::info!(video_id = %id, "video updated");
                return Ok(self.views(caller, vec![Arc::new(record)]).await?.remove(0));
            }
        }
        // Changed under us every time: the caller may try again.
        Err(AppError::Unavailable("the video kept changing".to_owned()))
    }

    /// Deletes a video and its media files (superusers only).
    pub async fn delete(&self, caller: &Caller, id: VideoId) -> AppResult<()> {
        caller.require_superuser()?;
        if !self.store.delete_video(id).await? {
            return Err(AppError::NotFound("video"));
        }
        // The folder name is built from the numeric id only, never from client text.
        let folder = self.media_dir.join("videos").join(id.to_string());
        match tokio::fs::remove_dir_all(&folder).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(error = %e, folder = %folder.display(), "removing media failed")
            }
        }
        tracing::info!(video_id = %id, "video deleted");
        Ok(())
    }

    // ---- per-user state ----------------------------------------------------------------------

    /// Marks `id` as a favorite of the caller.
    pub async fn add_favorite(&self, caller: &Caller, id: VideoId) -> AppResult<VideoView> {
        if !self.store.add_favorite(caller.user.user_id(), id).await? {
            return Err(AppError::NotFound("video"));
        }
        self.get(caller, id).await
    }

    /// Removes `id` from the caller's favorites.
    pub async fn remove_favorite(&self, caller: &Caller, id: VideoId) -> AppResult<()> {
        self.store.remove_favorite(caller.user.user_id(), id).await
    }

    /// Records the caller's position in `id`.
    pub async fn save_progress(
        &self,
        caller: &Caller,
        id: VideoId,
        position: f64,
    ) -> AppResult<Timestamp> {
        if !position.is_finite() || !(0.0..=7.0 * 86_400.0).contains(&position) {
            return Err(AppError::field(
                "position_seconds",
                "The position must be a number of seconds between 0 and the video's length.",
            ));
        }
        self.store
            .save_progress(caller.user.user_id(), id, position)
            .await?
            .ok_or(AppError::NotFound("video"))
    }

    /// Lays the caller's favorites and progress over shared records.
    async fn views(
        &self,
        caller: &Caller,
        records: Vec<Arc<VideoRecord>>,
    ) -> AppResult<Vec<VideoView>> {
        Ok(overlay(records, self.state(caller).await?, caller))
    }

    /// The caller's favorites and progress (cached in the caller's own scope).
    async fn state(&self, caller: &Caller) -> AppResult<UserState> {
        let user = caller.user.user_id();
        self.cache
            .get_or_load(
                caller.versions.as_ref(),
                &user_scope(user),
                "state",
                || async { Ok(UserState::from(self.store.user_state(user).await?)) },
            )
            .await
    }
}

fn overlay(records: Vec<Arc<VideoRecord>>, state: UserState, caller: &Caller) -> Vec<VideoView> {
    let favorites: HashSet<VideoId> = state.favorites.into_iter().collect();
    let progress: HashMap<VideoId, f64> = state.progress.into_iter().collect();
    records
        .into_iter()
        .map(|record| VideoView {
            is_favorite: favorites.contains(&record.id),
            progress: progress.get(&record.id).copied().unwrap_or(0.0),
            uploader_contact: caller.user.is_superuser,
            record,
        })
        .collect()
}

/// A cached page of shared records.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct SharedPage {
    videos: Vec<Arc<VideoRecord>>,
    total: i64,
}

impl From<crate::store::VideoPage> for SharedPage {
    fn from(page: crate::store::VideoPage) -> Self {
        Self {
            videos: shared(page.videos),
            total: page.total,
        }
    }
}

fn shared(records: Vec<VideoRecord>) -> Vec<Arc<VideoRecord>> {
    records.into_iter().map(Arc::new).collect()
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct UserState {
    favorites: Vec<VideoId>,
    progress: Vec<(VideoId, f64)>,
}

impl From<UserStateRows> for UserState {
    fn from(rows: UserStateRows) -> Self {
        Self {
            favorites: rows
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(v, _)| *v)
                .collect(),
            progress: rows
                .iter()
                .filter_map(|(v, p)| p.map(|p| (*v, p)))
                .collect(),
        }
    }
}

/// A stable cache key for a list query.
fn cache_key(query: &VideoQuery) -> String {
    let filter = serde_json::to_string(&query.filter).unwrap_or_default();
    let after = query
        .after
        .map(|t| format!("{}:{}:{}", t.rank, t.micros, t.id))
        .unwrap_or_default();
    format!(
        "list:{filter}:{}:{after}:{}:{}",
        query.ordering.as_str(),
        query.offset,
        query.limit
    )
}
