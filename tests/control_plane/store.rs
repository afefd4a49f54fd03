//! The store on both backends: every query the services rely on.

use std::path::PathBuf;
use std::time::Duration;

use reel::domain::*;
use reel::store::{NewDelivery, NewFile, RecordFileQuery, RecordingFilter, Store, StoreError};
use serde_json::{Map, json};

use crate::both_backends;
use crate::common::{Db, database_url};

async fn open(db: Db) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(db, dir.path()).await;
    let store = Store::open(&url).await.unwrap();
    // Opening again (a restart) finds the migrations applied.
    Store::open(&url).await.unwrap().close().await;
    (store, dir)
}

fn cid(id: &str) -> Cid {
    Cid::parse(&format!("default:{id}")).unwrap()
}

fn call(id: &str, now: Timestamp) -> Call {
    Call {
        cid: cid(id),
        created_by: UserId::parse("alice").unwrap(),
        custom: Map::new(),
        settings_override: serde_json::from_value(json!({"recording": {"quality": "1080p"}}))
            .unwrap(),
        members: vec![],
        starts_at: None,
        team: None,
        created_at: now,
        updated_at: now,
    }
}

/// Inserts `r` in a transaction of its own.
async fn insert(store: &Store, r: &Recording) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    tx.insert_recording(r).await?;
    tx.commit().await
}

fn recording(c: &Cid, session: &SessionId, t: RecordingType) -> Recording {
    let now = Timestamp::now();
    Recording {
        id: RecordingId::random(),
        cid: c.clone(),
        session_id: session.clone(),
        recording_type: t,
        state: RecordingState::Requested,
        storage: None,
        requested_by: Some(UserId::parse("ünïcode user").unwrap()),
        error: None,
        created_at: now,
        started_at: None,
        stopped_at: None,
        updated_at: now,
        exclusive: true,
    }
}

both_backends!(call_types_and_calls, |db| async move {
    let (store, _dir) = open(db).await;
    let now = Timestamp::now();
    let name = CallTypeName::parse("default").unwrap();
    let mut ct = CallType::new(name.clone(), now);
    store
        .ensure_call_types(std::slice::from_ref(&ct))
        .await
        .unwrap();
    store
        .ensure_call_types(std::slice::from_ref(&ct))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_call_type(&ct).await,
        Err(StoreError::Conflict(_))
    ));
    ct.settings = serde_json::from_value(json!({"raw_recording": {"mode": "disabled"}})).unwrap();
    assert!(store.update_call_type(&ct).await.unwrap());
    let back = store.get_call_type(&name).await.unwrap().unwrap();
    assert_eq!(back, ct);
    assert_eq!(store.list_call_types().await.unwrap().len(), 1);

    let c = call("c1", now);
    assert!(store.insert_call(&c).await.unwrap());
    assert!(
        !store.insert_call(&c).await.unwrap(),
        "a second insert keeps the first"
    );
    assert_eq!(store.get_call(&c.cid).await.unwrap().unwrap(), c);
    let mut changed = c.clone();
    changed.custom.insert("k".into(), json!(1));
    changed.updated_at = now.after(Duration::from_millis(1));
    store.update_call(&changed, c.updated_at).await.unwrap();
    let mut stale = c.clone();
    stale.updated_at = now.after(Duration::from_millis(2));
    assert!(matches!(
        store.update_call(&stale, c.updated_at).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(
        store.get_call(&c.cid).await.unwrap().unwrap().custom["k"],
        1
    );
    assert!(matches!(
        store.delete_call_type(&name).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.get_call(&cid("nope")).await.unwrap().is_none());

    let u = User {
        id: UserId::parse("../../etc ünï").unwrap(),
        role: Role::parse("admin").unwrap(),
        name: Some("N".into()),
        image: None,
        custom: Map::new(),
        created_at: now,
        updated_at: now,
    };
    store.upsert_user(&u).await.unwrap();
    let later = User {
        role: Role::user(),
        created_at: now.after(Duration::from_secs(5)),
        ..u.clone()
    };
    let kept = store.upsert_user(&later).await.unwrap();
    assert_eq!(kept.role, Role::user());
    assert_eq!(kept.created_at, now, "creation time is kept");
});

both_backends!(sessions_one_active_per_call, |db| async move {
    let (store, _dir) = open(db).await;
    let c = cid("s");
    let s1 = CallSession {
        id: SessionId::random(),
        cid: c.clone(),
        started_at: Timestamp::now(),
        ended_at: None,
    };
    let (a, new) = store.start_session(&s1).await.unwrap();
    assert!(new);
    assert_eq!(a.id, s1.id);
    let s2 = CallSession {
        id: SessionId::random(),
        ..s1.clone()
    };
    let (b, new) = store.start_session(&s2).await.unwrap();
    assert!(!new, "the active session stays");
    assert_eq!(b.id, s1.id);
    let ended = store
        .end_session(&c, Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert!(!ended.is_active());
    assert!(store.active_session(&c).await.unwrap().is_none());
    assert!(
        store
            .end_session(&c, Timestamp::now())
            .await
            .unwrap()
            .is_none()
    );
    let (d, new) = store.start_session(&s2).await.unwrap();
    assert!(new && d.id == s2.id);
    assert_eq!(store.end_all_sessions(Timestamp::now()).await.unwrap(), 1);
    assert!(
        store
            .get_session(&s1.id)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .is_some()
    );
});

both_backends!(recordings_and_files, |db| async move {
    let (store, _dir) = open(db).await;
    let c = cid("r");
    store
        .ensure_call_types(&[CallType::new(c.call_type.clone(), Timestamp::now())])
        .await
        .unwrap();
    store
        .insert_call(&call("r", Timestamp::now()))
        .await
        .unwrap();
    assert!(
        store
            .call_recordings(&c)
            .await
            .unwrap()
            .unwrap()
            .2
            .is_empty(),
        "a call without files lists none"
    );
    let start = |id: &SessionId| CallSession {
        id: id.clone(),
        cid: c.clone(),
        started_at: Timestamp::now(),
        ended_at: None,
    };
    let ended = SessionId::random();
    store.start_session(&start(&ended)).await.unwrap();
    store.end_session(&c, Timestamp::now()).await.unwrap();
    assert!(
        matches!(
            insert(&store, &recording(&c, &ended, RecordingType::Raw)).await,
            Err(StoreError::Stale(_))
        ),
        "no recording starts in an ended session"
    );
    let session = SessionId::random();
    store.start_session(&start(&session)).await.unwrap();
    let r = recording(&c, &session, RecordingType::Raw);
    insert(&store, &r).await.unwrap();
    let again = recording(&c, &session, RecordingType::Raw);
    assert!(
        matches!(insert(&store, &again).await, Err(StoreError::Conflict(_))),
        "one active per type"
    );
    insert(&store, &recording(&c, &session, RecordingType::Individual))
        .await
        .unwrap();
    assert_eq!(store.active_recordings(&c).await.unwrap().len(), 2);
    assert_eq!(store.get_recording(&r.id).await.unwrap().unwrap(), r);

    let t0 = Timestamp::now();
    let mut tx = store.write().await.unwrap();
    tx.transition_recording(
        &r.id,
        (RecordingState::Requested, RecordingState::Running),
        true,
        None,
        t0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.write().await.unwrap();
    let stale = tx
        .transition_recording(
            &r.id,
            (RecordingState::Requested, RecordingState::Running),
            true,
            None,
            t0,
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Stale(_))));
    drop(tx);
    let running = store.get_recording(&r.id).await.unwrap().unwrap();
    assert_eq!(
        (running.state, running.started_at),
        (RecordingState::Running, Some(t0))
    );

    let file = |name: &str, start: i64| NewFile {
        file: RecordingFile {
            recording_id: r.id.clone(),
            cid: c.clone(),
            session_id: session.clone(),
            recording_type: RecordingType::Raw,
            filename: FileName::parse(name).unwrap(),
            storage: StorageLocation::Local,
            object_key: format!("default/r/{session}/{name}"),
            size: 42,
            start_time: Timestamp::from_unix_nanos(start),
            end_time: Timestamp::from_unix_nanos(start + 10),
            layer: (start == 200).then(|| "speakers".to_owned()),
        },
        local_path: PathBuf::from(format!("/tmp/{name}")),
    };
    let mut tx = store.write().await.unwrap();
    let late = tx.insert_file(&file("b.tar.gz", 200), t0).await.unwrap();
    let early = tx.insert_file(&file("a.tar.gz", 100), t0).await.unwrap();
    assert!(matches!(
        tx.insert_file(&file("a.tar.gz", 1), t0).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx); // rolled back: nothing of it is kept
    assert!(store.files_of(&r.id).await.unwrap().is_empty());

    let mut tx = store.write().await.unwrap();
    let late2 = tx.insert_file(&file("b.tar.gz", 200), t0).await.unwrap();
    let early2 = tx.insert_file(&file("a.tar.gz", 100), t0).await.unwrap();
    tx.commit().await.unwrap();
    assert_ne!(late2, early2);
    let _ = (late, early);
    let due = store.due_uploads(Timestamp::now(), 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(
        due[0].local_path.as_deref(),
        Some(std::path::Path::new("/tmp/b.tar.gz"))
    );
    assert_eq!(due[0].file.layer.as_deref(), Some("speakers"));
    assert_eq!(due[1].file.layer, None);
    store
        .upload_attempt_failed(
            late2,
            1,
            Timestamp::now().after(Duration::from_secs(60)),
            "S3 down",
        )
        .await
        .unwrap();
    assert_eq!(
        store.due_uploads(Timestamp::now(), 10).await.unwrap().len(),
        1
    );
    assert!(store.next_upload_at().await.unwrap().is_some());

    store.set_upload_id(late2, Some("up-1")).await.unwrap();
    store.add_upload_part(late2, 2, "e2").await.unwrap();
    store.add_upload_part(late2, 1, "e1").await.unwrap();
    store.add_upload_part(late2, 1, "e1b").await.unwrap();
    assert_eq!(
        store.upload_parts(late2).await.unwrap(),
        vec![(1, "e1b".into()), (2, "e2".into())]
    );

    let mut tx = store.write().await.unwrap();
    tx.mark_file_uploaded(early2, Timestamp::now())
        .await
        .unwrap();
    tx.mark_file_uploaded(late2, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(tx.file_counts(&r.id).await.unwrap(), (0, 2, 0));
    tx.commit().await.unwrap();
    assert!(store.upload_parts(late2).await.unwrap().is_empty());
    let listed = |store: Store, c: Cid| async move {
        store
            .call_recordings(&c)
            .await
            .unwrap()
            .expect("the call exists")
            .2
    };
    let files = listed(store.clone(), c.clone()).await;
    let names: Vec<_> = files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["a.tar.gz", "b.tar.gz"], "listed by start time");
    assert_eq!(
        files[0],
        file("a.tar.gz", 100).file,
        "every field survives the listing"
    );
    assert!(
        store
            .files_of(&r.id)
            .await
            .unwrap()
            .iter()
            .all(|f| f.local_path.is_none())
    );
    let found = store
        .find_file(&c, &session, &FileName::parse("a.tar.gz").unwrap())
        .await
        .unwrap()
        .unwrap();
    store.delete_file(found.id).await.unwrap();
    assert_eq!(listed(store.clone(), c.clone()).await.len(), 1);
    assert!(store.call_recordings(&cid("nope")).await.unwrap().is_none());

    let counts = store.count_recordings().await.unwrap();
    assert!(counts.contains(&(RecordingType::Raw, RecordingState::Running, 1)));
    assert!(counts.contains(&(RecordingType::Individual, RecordingState::Requested, 1)));
    assert_eq!(store.unfinished_recordings().await.unwrap().len(), 2);
});

both_backends!(outbox_orders_per_call_and_endpoint, |db| async move {
    let (store, _dir) = open(db).await;
    let d = |endpoint: &str, key: &str, n: u32| NewDelivery {
        endpoint: endpoint.into(),
        ordering_key: key.into(),
        event_type: format!("e{n}"),
        body: format!("{{\"n\":{n}}}"),
    };
    let now = Timestamp::now();
    let mut tx = store.write().await.unwrap();
    tx.enqueue(
        &[
            d("A", "c1", 1),
            d("A", "c1", 2),
            d("A", "c2", 3),
            d("B", "c1", 4),
        ],
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let heads =
        |v: Vec<reel::store::Delivery>| v.into_iter().map(|d| d.event_type).collect::<Vec<_>>();
    assert_eq!(
        heads(store.due_deliveries(now, 10).await.unwrap()),
        ["e1", "e3", "e4"]
    );

    // A failed head holds back the rest of its call on that endpoint only.
    let first = store.due_deliveries(now, 1).await.unwrap().remove(0);
    let retry = now.after(Duration::from_secs(60));
    store
        .delivery_failed(first.id, 1, Some(500), "boom", Some(retry))
        .await
        .unwrap();
    assert_eq!(
        heads(store.due_deliveries(now, 10).await.unwrap()),
        ["e3", "e4"]
    );
    assert_eq!(store.next_delivery_at().await.unwrap(), Some(now));
    let failed = store.failed_deliveries(10).await.unwrap();
    assert_eq!(
        (failed.len(), failed[0].last_status, failed[0].attempts),
        (1, Some(500), 1)
    );

    // Given up: the next one of the call goes.
    store
        .delivery_failed(first.id, 2, None, "gone", None)
        .await
        .unwrap();
    assert_eq!(
        heads(store.due_deliveries(now, 10).await.unwrap()),
        ["e2", "e3", "e4"]
    );
    for x in store.due_deliveries(now, 10).await.unwrap() {
        store.delivery_succeeded(x.id, 1, now).await.unwrap();
    }
    assert!(store.due_deliveries(now, 10).await.unwrap().is_empty());
    assert_eq!(store.failed_deliveries(10).await.unwrap().len(), 1);
    assert_eq!(store.requeue_dead(None, now).await.unwrap(), 1);
    assert_eq!(heads(store.due_deliveries(now, 10).await.unwrap()), ["e1"]);
    assert_eq!(
        store
            .prune_delivered(now.after(Duration::from_secs(1)))
            .await
            .unwrap(),
        3
    );
    assert_eq!(store.deliveries(10).await.unwrap().len(), 1);
});

both_backends!(credentials_are_kept_once, |db| async move {
    let (store, _dir) = open(db).await;
    assert!(store.credentials().await.unwrap().is_none());
    let (kept, fresh) = store.keep_credentials("k1", "s1").await.unwrap();
    assert!(fresh && kept == ("k1".into(), "s1".into()));
    let (kept, fresh) = store.keep_credentials("k2", "s2").await.unwrap();
    assert!(!fresh && kept == ("k1".into(), "s1".into()));
});

both_backends!(external_storages, |db| async move {
    let (store, _dir) = open(db).await;
    let now = Timestamp::now();
    let mut s = ExternalStorage {
        name: StorageName::parse("mine").unwrap(),
        bucket: "b".into(),
        path: "p".into(),
        s3: S3Access {
            region: "us-east-1".into(),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            endpoint_url: None,
        },
        created_at: now,
        updated_at: now,
    };
    store.insert_storage(&s).await.unwrap();
    assert!(matches!(
        store.insert_storage(&s).await,
        Err(StoreError::Conflict(_))
    ));
    s.bucket = "c".into();
    assert!(store.update_storage(&s).await.unwrap());
    assert_eq!(
        store.get_storage(&s.name).await.unwrap().unwrap().bucket,
        "c"
    );
    assert_eq!(store.list_storages().await.unwrap().len(), 1);
    assert!(!store.storage_in_use(&s.name).await.unwrap());
    assert!(store.delete_storage(&s.name).await.unwrap());
    assert!(!store.delete_storage(&s.name).await.unwrap());
});

both_backends!(record_files_by_token_stream_and_status, |db| async move {
    let (store, _dir) = open(db).await;
    let c = Cid::parse("broadcast:news").unwrap();
    store
        .ensure_call_types(&[CallType::new(c.call_type.clone(), Timestamp::now())])
        .await
        .unwrap();
    store
        .insert_call(&Call {
            cid: c.clone(),
            ..call("news", Timestamp::now())
        })
        .await
        .unwrap();
    let session = SessionId::random();
    store
        .start_session(&CallSession {
            id: session.clone(),
            cid: c.clone(),
            started_at: Timestamp::now(),
            ended_at: None,
        })
        .await
        .unwrap();
    let news = StreamName::parse("news").unwrap();
    let mut ids = Vec::new();
    // Three sources: two of token 1, one of token 2.
    for (token, source) in [(1, ""), (1, "b"), (2, "c")] {
        let r = Recording {
            exclusive: false,
            ..recording(&c, &session, RecordingType::Broadcast)
        };
        let mut tx = store.write().await.unwrap();
        tx.insert_recording(&r).await.unwrap();
        let id = tx
            .insert_record_file(&r.id, (token, &news, source), Timestamp::now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push((id, r));
    }
    let (first, failed) = (&ids[0].1, &ids[2].1);
    let mut tx = store.write().await.unwrap();
    let change = (RecordingState::Requested, RecordingState::Failed);
    tx.transition_recording(
        &failed.id,
        change,
        false,
        Some("too short"),
        Timestamp::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let info = MediaInfo {
        format: "WEBM".into(),
        size: 1234,
        duration: 12.5,
        tracks: vec![TrackInfo {
            kind: "video".into(),
            codec: "VP8".into(),
            width: 1280,
            height: 720,
            ..TrackInfo::default()
        }],
    };
    store.set_record_metadata(&first.id, &info).await.unwrap();

    let got = store.record_file(ids[0].0).await.unwrap().unwrap();
    assert_eq!((got.token_id, got.source_id.as_str()), (1, ""));
    assert_eq!(got.recording, *first);
    assert_eq!(got.metadata, Some(info));
    assert!(store.record_file(424242).await.unwrap().is_none());
    let list = |q: RecordFileQuery| {
        let store = store.clone();
        async move {
            let q = RecordFileQuery { limit: 10, ..q };
            let found = store.record_files(&q).await.unwrap();
            found.into_iter().map(|f| f.id).collect::<Vec<_>>()
        }
    };
    let all: Vec<i64> = ids.iter().map(|(id, _)| *id).collect();
    assert_eq!(list(RecordFileQuery::default()).await, all);
    let newest_first = RecordFileQuery {
        descending: true,
        ..RecordFileQuery::default()
    };
    assert_eq!(list(newest_first).await, [all[2], all[1], all[0]]);
    let of_token = RecordFileQuery {
        token_id: Some(1),
        offset: 1,
        ..RecordFileQuery::default()
    };
    assert_eq!(list(of_token).await, [all[1]]);
    let errors = RecordFileQuery {
        states: Some(vec![RecordingState::Failed]),
        stream: Some(news.clone()),
        ..RecordFileQuery::default()
    };
    assert_eq!(list(errors).await, [all[2]]);
    let no_state = RecordFileQuery {
        states: Some(vec![]),
        ..RecordFileQuery::default()
    };
    assert!(list(no_state).await.is_empty());
    let other_stream = RecordFileQuery {
        stream: Some(StreamName::parse("sport").unwrap()),
        ..RecordFileQuery::default()
    };
    assert!(list(other_stream).await.is_empty());
    assert_eq!(
        store
            .stored_bytes(Some(RecordingType::Broadcast))
            .await
            .unwrap(),
        0
    );
    // Recordings are found by the token their broadcast was published with.
    let by_token = |token| RecordingFilter {
        token_id: Some(token),
        types: RecordingType::ALL.to_vec(),
        limit: 10,
        ..RecordingFilter::default()
    };
    let (of_one, total) = store.find_recordings(&by_token(1)).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(of_one[0].id, ids[0].1.id);
    assert_eq!(store.find_recordings(&by_token(7)).await.unwrap().1, 0);
    let mut tx = store.write().await.unwrap();
    assert!(tx.delete_recording(&ids[0].1.id).await.unwrap());
    assert!(!tx.delete_recording(&ids[0].1.id).await.unwrap());
    assert_eq!(
        tx.record_file_of(&ids[1].1.id).await.unwrap().map(|f| f.id),
        Some(all[1])
    );
    tx.commit().await.unwrap();
    assert_eq!(list(RecordFileQuery::default()).await, [all[1], all[2]]);
});
