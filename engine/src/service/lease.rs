//! The single-writer lock: a lease on the key `writer` of a JetStream KV bucket whose
//! entries expire after the lease TTL (`<prefix>_ENGINE_LOCK`, history 1).
//!
//! An engine creates the key (only possible when nobody holds it) before touching the
//! `ENGINE` consumer, renews it every TTL/4 with a compare-and-set on its revision, and stops
//! applying inputs as soon as it cannot prove it still holds the lease: a renewal answered
//! "wrong revision" (someone else took over) or no successful renewal within the TTL. A second
//! engine waits until the key is free: at once after a clean shutdown (the key is deleted),
//! after at most the TTL when the holder died. An engine that lost its lease in an outage
//! takes it back at once if the key still names it (nobody else took over in between).

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bus::Names;
use tokio::time::Instant;

use super::ServiceError;

const KEY: &str = "writer";

pub fn bucket_name(names: &Names) -> String {
    if names.prefix().is_empty() {
        "ENGINE_LOCK".into()
    } else {
        format!("{}_ENGINE_LOCK", names.prefix())
    }
}

pub struct Lease {
    kv: kv::Store,
    holder: String,
    revision: u64,
    ttl: Duration,
    valid_until: Instant,
}

impl Lease {
    /// Waits until this process holds the writer lease. `previous`: the revision of the lease
    /// this process held before it lost it in an outage, if any.
    pub async fn acquire(
        js: &jetstream::Context,
        names: &Names,
        holder: &str,
        ttl: Duration,
        previous: Option<u64>,
    ) -> Result<Self, ServiceError> {
        let kv = open_bucket(js, names, ttl).await?;
        let mut told = false;
        loop {
            let started = Instant::now();
            match kv.create(KEY, holder.to_string().into()).await {
                Ok(revision) => {
                    tracing::info!(holder, "holding the engine writer lock");
                    return Ok(Self {
                        kv,
                        holder: holder.to_string(),
                        revision,
                        ttl,
                        valid_until: started + safe_span(ttl),
                    });
                }
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if let Some(revision) = take_back(&kv, holder, previous).await {
                        tracing::info!(holder, "holding the engine writer lock again");
                        return Ok(Self {
                            kv,
                            holder: holder.to_string(),
                            revision,
                            ttl,
                            valid_until: started + safe_span(ttl),
                        });
                    }
                    if !told {
                        let current = kv.get(KEY).await.ok().flatten().unwrap_or_default();
                        tracing::warn!(
                            holder = %String::from_utf8_lossy(&current),
                            "another engine holds the writer lock; waiting for it to be released"
                        );
                        told = true;
                    }
                    tokio::time::sleep(ttl / 10).await;
                }
                Err(e) => return Err(ServiceError::Nats(format!("writer lock: {e}"))),
            }
        }
    }

    /// The revision of the entry this lease last wrote.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// How often [`Lease::renew`] should run.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// True while the lease is certainly ours (renewed recently enough).
    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }

    /// Extends the lease. Fails with [`ServiceError::LockLost`] when another engine took it,
    /// or when it could not be renewed for so long that it may have expired.
    pub async fn renew(&mut self) -> Result<(), ServiceError> {
        let started = Instant::now();
        let value = self.holder.clone().into();
        match self.kv.update(KEY, value, self.revision).await {
            Ok(revision) => {
                self.revision = revision;
                self.valid_until = started + safe_span(self.ttl);
                Ok(())
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(
                ServiceError::LockLost("another engine took the writer lock".into()),
            ),
            Err(e) if self.is_valid() => {
                tracing::warn!("could not renew the writer lock yet: {e}");
                Ok(())
            }
            Err(e) => Err(ServiceError::LockLost(format!("lease ran out: {e}"))),
        }
    }

    /// Frees the lock at once (clean shutdown), so a successor need not wait for the TTL.
    pub async fn release(self) {
        if let Err(e) = self
            .kv
            .delete_expect_revision(KEY, Some(self.revision))
            .await
        {
            tracing::warn!("could not release the writer lock (it expires by itself): {e}");
        }
    }
}

/// Takes the lease back when the key is still exactly the entry this process last wrote (its
/// own lease from before an outage, which it stopped using): a compare-and-set on that
/// revision, so it fails if anyone wrote the key since. Saves waiting out the TTL.
async fn take_back(kv: &kv::Store, holder: &str, previous: Option<u64>) -> Option<u64> {
    let previous = previous?;
    let entry = kv.entry(KEY).await.ok().flatten()?;
    let ours = entry.revision == previous
        && entry.operation == kv::Operation::Put
        && entry.value.as_ref() == holder.as_bytes();
    if !ours {
        return None;
    }
    kv.update(KEY, holder.to_string().into(), entry.revision)
        .await
        .ok()
}

/// The part of the TTL we trust: the rest covers clock drift and request latency.
fn safe_span(ttl: Duration) -> Duration {
    ttl.mul_f64(0.75)
}

async fn open_bucket(
    js: &jetstream::Context,
    names: &Names,
    ttl: Duration,
) -> Result<kv::Store, ServiceError> {
    let bucket = bucket_name(names);
    // The bucket's stream is created by hand: `create_key_value` first reads the account
    // info, which this client cannot parse from a 2.9 server. The layout is the KV one.
    let config = jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("the engine's single-writer lease".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: ttl,
        discard: jetstream::stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: jetstream::stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    };
    let failed =
        |e: &dyn std::fmt::Display| ServiceError::Nats(format!("writer lock bucket {bucket}: {e}"));
    let mut stream = js
        .get_or_create_stream(config.clone())
        .await
        .map_err(|e| failed(&e))?;
    // A changed ENGINE_LOCK_TTL_MS must change how fast a dead holder's key expires.
    let current = stream.info().await.map_err(|e| failed(&e))?.config.max_age;
    if current != ttl {
        js.update_stream(config).await.map_err(|e| failed(&e))?;
    }
    js.get_key_value(&bucket)
        .await
        .map_err(|e| ServiceError::Nats(format!("writer lock bucket {bucket}: {e}")))
}
