//! The MongoDB snapshot store (feature `mongo`, used when `MONGODB_URL` is set): database
//! `exness_snapshots`, collection `engine_snapshots`, one document per snapshot
//! `{stream, last_seq, format, state (binary blob), created_at}`, indexed by
//! `(stream, last_seq desc)`.

use mongodb::bson::{Binary, Bson, DateTime, Document, doc, oid::ObjectId, spec::BinarySubtype};
use mongodb::{Client, Collection, IndexModel};

use super::ServiceError;
use super::snapshot::{FORMAT, SnapshotMeta};

pub const DATABASE: &str = "exness_snapshots";
pub const COLLECTION: &str = "engine_snapshots";

#[derive(Clone)]
pub struct MongoStore {
    coll: Collection<Document>,
}

fn mongo(e: mongodb::error::Error) -> ServiceError {
    ServiceError::Snapshot(format!("mongodb: {e}"))
}

fn oid(meta: &SnapshotMeta) -> Result<ObjectId, ServiceError> {
    ObjectId::parse_str(&meta.id)
        .map_err(|_| ServiceError::Snapshot(format!("bad snapshot id {}", meta.id)))
}

impl MongoStore {
    pub async fn connect(url: &str) -> Result<Self, ServiceError> {
        Self::connect_to(url, DATABASE).await
    }

    /// Connects to `database` (tests use their own) and makes sure the index exists.
    pub async fn connect_to(url: &str, database: &str) -> Result<Self, ServiceError> {
        let client = Client::with_uri_str(url).await.map_err(mongo)?;
        let coll = client.database(database).collection::<Document>(COLLECTION);
        let index = IndexModel::builder()
            .keys(doc! { "stream": 1, "last_seq": -1 })
            .build();
        coll.create_index(index).await.map_err(mongo)?;
        Ok(Self { coll })
    }

    pub async fn save(&self, stream: &str, last_seq: u64, blob: &[u8]) -> Result<(), ServiceError> {
        let state = Binary {
            subtype: BinarySubtype::Generic,
            bytes: blob.to_vec(),
        };
        let document = doc! {
            "stream": stream,
            "last_seq": i64::try_from(last_seq).unwrap_or(i64::MAX),
            "format": FORMAT,
            "state": Bson::Binary(state),
            "created_at": DateTime::now(),
        };
        self.coll.insert_one(document).await.map_err(mongo)?;
        Ok(())
    }

    pub async fn list(&self, stream: &str) -> Result<Vec<SnapshotMeta>, ServiceError> {
        let mut cursor = self
            .coll
            .find(doc! { "stream": stream })
            .sort(doc! { "last_seq": -1, "_id": -1 })
            .projection(doc! { "state": 0 })
            .await
            .map_err(mongo)?;
        let mut out = Vec::new();
        while cursor.advance().await.map_err(mongo)? {
            let d = cursor.deserialize_current().map_err(mongo)?;
            let (Ok(id), Ok(seq)) = (d.get_object_id("_id"), d.get_i64("last_seq")) else {
                tracing::error!("skipping a malformed snapshot document");
                continue;
            };
            out.push(SnapshotMeta {
                id: id.to_hex(),
                last_seq: u64::try_from(seq).unwrap_or(0),
                format: d.get_i32("format").unwrap_or(0),
            });
        }
        Ok(out)
    }

    pub async fn load(&self, meta: &SnapshotMeta) -> Result<Vec<u8>, ServiceError> {
        let found = self
            .coll
            .find_one(doc! { "_id": oid(meta)? })
            .await
            .map_err(mongo)?
            .ok_or_else(|| ServiceError::Snapshot(format!("snapshot {} is gone", meta.id)))?;
        found
            .get_binary_generic("state")
            .cloned()
            .map_err(|e| ServiceError::Snapshot(format!("snapshot {}: {e}", meta.id)))
    }

    pub async fn delete(&self, doomed: &[&SnapshotMeta]) -> Result<(), ServiceError> {
        let ids = doomed
            .iter()
            .map(|m| oid(m).map(Bson::ObjectId))
            .collect::<Result<Vec<_>, _>>()?;
        if !ids.is_empty() {
            self.coll
                .delete_many(doc! { "_id": { "$in": ids } })
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }
}
