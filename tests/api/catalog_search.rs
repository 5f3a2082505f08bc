//! Search through the index, ranked by relevance, and numbered pages through page indexes: the
//! same answers on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm), checked against what a
//! reader expects, not only against each other.

use rstest::rstest;
use videoflix::{
    domain::{Email, Ordering, PageToken, RawVideoMeta, SearchQuery, UserId, VideoMeta},
    store::{NewUser, Store, VideoFilter, VideoQuery},
};

use crate::{
    catalog::{admin_token, guest_token, titles},
    helpers::{Backend, spawn_app},
};

/// Videos in upload order (the last is the newest): (title, description).
const CATALOG: &[(&str, &str)] = &[
    ("Crème Brûlée", "A French dessert"),
    ("creme brulee at home", ""),
    ("The Brûlée Files", ""),
    ("100% Pure", "Discount_code: 50%_off"),
    ("Night Film", "a film about nights"),
    ("Film 3", ""),
    ("Film 30", ""),
    ("Filmography", "The art of FILM 3D"),
    ("Documentary", "Mentions crème brûlée in passing"),
    ("Dot.Com Story", "\"Quoted\" text! With   odd    spacing"),
];

async fn uploader(store: &Store) -> UserId {
    let email = Email::parse("search@example.com").expect("email");
    store
        .create_user(NewUser {
            email: &email,
            password_hash: "hash",
            is_active: true,
            is_superuser: true,
            is_guest: false,
        })
        .await
        .expect("user")
        .user_id()
}

async fn add(store: &Store, by: UserId, title: &str, description: &str) {
    let meta = VideoMeta::parse(&RawVideoMeta {
        title,
        description,
        ..RawVideoMeta::default()
    })
    .expect("meta");
    store.create_video(&meta, by).await.expect("video");
}

fn query(search: &str, ordering: &str, offset: i64, limit: i64) -> VideoQuery {
    let search = SearchQuery::parse(search).expect("search");
    let ordering = Ordering::for_request(ordering, search.is_some()).expect("ordering");
    VideoQuery {
        filter: VideoFilter {
            search,
            ..VideoFilter::default()
        },
        ordering,
        after: None,
        offset,
        limit,
    }
}

async fn found(store: &Store, search: &str, ordering: &str) -> Vec<String> {
    let page = store
        .list_videos(&query(search, ordering, 0, 100))
        .await
        .expect("list");
    assert_eq!(page.total, i64::try_from(page.videos.len()).expect("len"));
    page.videos.into_iter().map(|v| v.title).collect()
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn search_ignores_case_and_accents_matches_parts_of_words_and_ranks_title_matches_first(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let by = uploader(store).await;
    for (title, description) in CATALOG {
        add(store, by, title, description).await;
    }
    // (search, expected titles in order): the whole title, then its start, then a later word's
    // start, then elsewhere in the title, then the description; newest first within a rank.
    let cases: &[(&str, &[&str])] = &[
        (
            "crème brûlée",
            &["Crème Brûlée", "creme brulee at home", "Documentary"],
        ),
        (
            "BRULEE",
            &[
                "The Brûlée Files",
                "creme brulee at home",
                "Crème Brûlée",
                "Documentary",
            ],
        ),
        ("film 3", &["Film 3", "Film 30", "Filmography"]),
        ("ilm", &["Filmography", "Film 30", "Film 3", "Night Film"]),
        // Two characters: below the trigram index's reach, the same answer by a scan.
        (
            "fi",
            &[
                "Filmography",
                "Film 30",
                "Film 3",
                "Night Film",
                "The Brûlée Files",
            ],
        ),
        // SQL wildcards and quotes are plain characters.
        ("%", &["100% Pure"]),
        ("_", &["100% Pure"]),
        ("50%_off", &["100% Pure"]),
        ("!", &["Dot.Com Story"]),
        ("\"quoted\"", &["Dot.Com Story"]),
        ("dot.com", &["Dot.Com Story"]),
        ("odd spacing", &["Dot.Com Story"]),
        ("  Odd\u{a0}SPACING ", &["Dot.Com Story"]),
        ("z", &[]),
        ("film 4", &[]),
    ];
    for (search, expected) in cases {
        assert_eq!(
            found(store, search, "").await,
            *expected,
            "search {search:?} on {backend:?}"
        );
    }
    // An order asked for wins over relevance.
    assert_eq!(
        found(store, "film", "uploaded_at").await,
        ["Night Film", "Film 3", "Film 30", "Filmography"]
    );
    assert_eq!(
        found(store, "film", "-uploaded_at").await,
        ["Filmography", "Film 30", "Film 3", "Night Film"]
    );

    // Keyset pages through a ranked list: every match once, in rank order.
    let mut after: Option<PageToken> = None;
    let mut seen = Vec::new();
    loop {
        let mut q = query("brulee", "", 0, 3);
        q.after = after;
        let page = store.list_videos(&q).await.expect("page");
        assert_eq!(page.total, 4);
        let more = page.videos.len() == 3;
        let Some(last) = page.videos.last() else {
            break;
        };
        let search = q.filter.search.as_ref().expect("search");
        after = Some(PageToken {
            ordering: Ordering::Relevance,
            rank: search.rank(&videoflix::domain::fold_search(&last.title)),
            micros: last.uploaded_at.micros(),
            id: last.id,
        });
        seen.extend(page.videos.into_iter().map(|v| v.title));
        if !more {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "The Brûlée Files",
            "creme brulee at home",
            "Crème Brûlée",
            "Documentary"
        ]
    );

    // Over REST: a search without an ordering is ranked; a renamed video is found by its new
    // title at once (the index follows updates).
    let admin = admin_token(&app).await;
    let user = guest_token(&app).await;
    let body = app
        .get_auth("/api/videos/?search=Film%203", &user)
        .await
        .expect(200)
        .body;
    assert_eq!(titles(&body), ["Film 3", "Film 30", "Filmography"]);
    let id = body[0]["id"].as_i64().expect("id");
    app.call(
        reqwest::Method::PATCH,
        &format!("/api/videos/{id}/"),
        Some(serde_json::json!({"title": "Überraschung"})),
        Some(&admin),
    )
    .await
    .expect(200);
    assert_eq!(
        titles(
            &app.get_auth("/api/videos/?search=uberr", &user)
                .await
                .expect(200)
                .body
        ),
        ["Überraschung"]
    );
    assert_eq!(found(store, "film 3", "").await, ["Film 30", "Filmography"]);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn numbered_pages_stay_exact_deep_in_a_large_list_and_after_writes(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let by = uploader(store).await;
    // Enough rows for several page-index positions (one every 256 rows).
    const N: i64 = 700;
    for n in 1..=N {
        add(
            store,
            by,
            &format!("Clip {n}"),
            if n % 7 == 0 { "seven" } else { "" },
        )
        .await;
    }
    let page = |offset: i64, search: &'static str| {
        let q = query(search, "-uploaded_at", offset, 20);
        async move {
            let page = store.list_videos(&q).await.expect("page");
            let titles: Vec<String> = page.videos.into_iter().map(|v| v.title).collect();
            (page.total, titles)
        }
    };
    let clips = |from: i64, count: i64| -> Vec<String> {
        (0..count)
            .map(|i| format!("Clip {}", from - i))
            .filter(|t| t != "Clip 0")
            .collect()
    };
    // Newest first: offset k shows clips N-k, N-k-1, …, whichever position index serves it.
    for offset in [0, 20, 255, 256, 257, 511, 512, 600, 680, 690] {
        let (total, titles) = page(offset, "").await;
        assert_eq!(total, N, "total at offset {offset}");
        assert_eq!(
            titles,
            clips(N - offset, 20.min(N - offset)),
            "offset {offset}"
        );
    }
    assert_eq!(page(N, "").await, (N, Vec::new()));
    // A search keeps every match's id in order: its pages are read by id, at any offset.
    for offset in [0, 20, 255, 256, 600, 690] {
        let (total, titles) = page(offset, "clip").await;
        assert_eq!(total, N, "search total at offset {offset}");
        assert_eq!(
            titles,
            clips(N - offset, 20.min(N - offset)),
            "search at offset {offset}"
        );
    }
    assert_eq!(page(N, "clip").await, (N, Vec::new()));
    // A filtered list has positions of its own.
    let (total, titles) = page(60, "seven").await;
    assert_eq!(total, N / 7);
    let sevens: Vec<String> = (1..=N / 7)
        .rev()
        .map(|k| format!("Clip {}", k * 7))
        .skip(60)
        .take(20)
        .collect();
    assert_eq!(titles, sevens);

    // A write moves every later page and the total at once, on this process and any other.
    add(store, by, "Clip 701", "").await;
    for search in ["", "clip"] {
        for offset in [20, 600] {
            let (total, titles) = page(offset, search).await;
            assert_eq!(total, N + 1, "{search:?} at {offset}");
            assert_eq!(titles, clips(N + 1 - offset, 20), "{search:?} at {offset}");
        }
    }
    let deleted = store
        .delete_video(videoflix::domain::VideoId::parse(350, "id").expect("id"))
        .await
        .expect("delete");
    assert!(deleted);
    let (total, titles) = page(340, "clip").await;
    assert_eq!(total, N);
    assert_eq!(titles, page(340, "").await.1);
    // Clip 350 is gone: positions 340.. show 361, 360, …, 351, 349, …
    let expected: Vec<String> = (1..=N + 1)
        .rev()
        .filter(|n| *n != 350)
        .skip(340)
        .take(20)
        .map(|n| format!("Clip {n}"))
        .collect();
    assert_eq!(titles, expected);
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn requests_arriving_together_wait_for_one_page_index_build(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.services.store;
    let by = uploader(store).await;
    for n in 1..=300 {
        add(store, by, &format!("Clip {n}"), "").await;
    }
    let q = query("clip", "-uploaded_at", 40, 20);
    let together = || async {
        let pages = futures::future::join_all((0..16).map(|_| store.list_videos(&q))).await;
        let pages: Vec<_> = pages.into_iter().map(|p| p.expect("page")).collect();
        assert!(pages.windows(2).all(|w| w[0] == w[1]));
        pages[0].clone()
    };
    let before = store.page_index_builds();
    let first = together().await;
    assert_eq!(first.total, 300);
    assert_eq!(
        store.page_index_builds() - before,
        1,
        "one build for 16 requests"
    );

    // After a write every request finds the index stale: still one build.
    add(store, by, "Clip 301", "").await;
    let after = together().await;
    assert_eq!(after.total, 301);
    assert_eq!(after.videos[0].title, "Clip 261");
    assert_eq!(
        store.page_index_builds() - before,
        2,
        "one build after the write"
    );
}
