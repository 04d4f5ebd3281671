//! The MongoDB snapshot store. No MongoDB runs on the development machines, so this test is
//! ignored (reported as skipped) unless run on purpose where one is reachable:
//! `MONGODB_URL=mongodb://127.0.0.1:27017 cargo test -p engine --features mongo --test mongo -- --ignored`
//! (`local/test` does exactly that when `MONGODB_URL` is set).

#[path = "it/svc/mod.rs"]
mod svc;

#[tokio::test]
#[ignore = "needs MONGODB_URL"]
async fn snapshots_round_trip_through_mongodb_and_the_engine_recovers_from_them() {
    #[cfg(not(feature = "mongo"))]
    panic!("built without the `mongo` feature: run with --features mongo");
    #[cfg(feature = "mongo")]
    with_mongo::run().await;
}

#[cfg(feature = "mongo")]
mod with_mongo {
    use std::time::Duration;

    use bus::{Asset, Command, Query};
    use engine::service::{SnapshotStore, mongo::MongoStore, recovery, snapshot};
    use engine::{Engine, EngineConfig};
    use migrations::TestDatabase;

    use super::svc::*;

    pub async fn run() {
        let url = std::env::var("MONGODB_URL").expect("MONGODB_URL is set for this test");
        store_round_trip(&url).await;
        engine_recovers_from_mongo(&url).await;
    }

    async fn store_round_trip(url: &str) {
        let database = format!("exness_snapshots_test_{}", uuid::Uuid::new_v4().simple());
        let store =
            SnapshotStore::Mongo(MongoStore::connect_to(url, &database).await.expect("mongo"));
        let mut engine = Engine::new(EngineConfig::default());
        for seq in 1..=3u64 {
            let c = cmd(
                &format!("m{seq}"),
                Command::CreateAccount {
                    user_id: user(u128::from(seq)),
                },
            );
            engine.apply(bus::EngineInput::command(c), 1_700_000_000_000);
            store
                .save("S", seq, &snapshot::encode(&engine, seq))
                .await
                .expect("save");
        }
        store
            .save("S", 4, b"not a snapshot")
            .await
            .expect("save junk");
        let listed = store.list("S").await.expect("list");
        let seqs: Vec<u64> = listed.iter().map(|m| m.last_seq).collect();
        assert_eq!(seqs, [4, 3, 2, 1]);
        // The damaged newest one is skipped in favour of the one before.
        let (loaded, seq) = recovery::load_newest(&store, "S", &EngineConfig::default())
            .await
            .expect("load");
        assert_eq!(seq, 3);
        assert!(loaded == engine);
        assert_eq!(store.prune("S", 2).await.expect("prune"), Some(3));
        assert_eq!(store.list("S").await.expect("list").len(), 2);
    }

    async fn engine_recovers_from_mongo(url: &str) {
        let names = random_names();
        let db = TestDatabase::create().await.expect("database");
        let client = client(&names, Duration::from_secs(10)).await;
        let mut settings = test_settings(&names, &db);
        settings.mongodb_url = Some(url.to_string());
        let engine = EngineTask::start(settings.clone());
        client
            .publish_tick(&tick(Asset::Sol, "150.00", "150.10"))
            .await
            .expect("tick");
        for i in 0..60 {
            let c = cmd(
                &format!("mc{i}"),
                Command::CreateAccount { user_id: user(i) },
            );
            client.send(c).await.expect("create");
        }
        engine.stop().await;
        let store = SnapshotStore::Mongo(MongoStore::connect(url).await.expect("mongo"));
        let newest = store.list(&names.engine_stream()).await.expect("list");
        assert_eq!(newest.first().map(|m| m.last_seq), Some(61));
        let engine = EngineTask::start(settings);
        wait_ready(&client).await;
        let prices = client.query(Query::GetPrices).await.expect("prices");
        assert!(matches!(prices, bus::QueryReply::Prices { ref quotes } if quotes.len() == 1));
        engine.stop().await;
    }
}
