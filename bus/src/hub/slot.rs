//! A connection's hold on the hub, released by `Drop`: its slot under `WS_MAX_CONNECTIONS`,
//! its place in the connection count and, once registered, its mailbox in the registry (and
//! with it its subscriptions and user). However the connection task ends (returns, panics,
//! or is aborted at shutdown), nothing it held stays behind.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Shared;
use super::mailbox::Mailbox;
use crate::types::UserId;

pub(super) struct Slot {
    shared: Arc<Shared>,
    mailbox: Option<u64>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// A free slot, or `None` when the hub is full.
    pub(super) fn take(shared: &Arc<Shared>, slots: &Arc<Semaphore>) -> Option<Self> {
        let permit = slots.clone().try_acquire_owned().ok()?;
        shared.stats.0.connections.fetch_add(1, Relaxed);
        Some(Self {
            shared: shared.clone(),
            mailbox: None,
            _permit: permit,
        })
    }

    /// Puts the connection's mailbox in the registry until the slot is dropped.
    pub(super) fn register(&mut self, mailbox: Arc<Mailbox>) {
        if let Some(old) = self.mailbox.replace(self.shared.registry.add(mailbox)) {
            self.shared.registry.remove(old);
        }
    }

    /// The connection's user from now on (`None`: not authenticated any more); see
    /// [`super::registry::Registry::set_user`].
    pub(super) fn set_user(&self, user: Option<(UserId, u64)>) {
        if let Some(id) = self.mailbox {
            self.shared.registry.set_user(id, user);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(id) = self.mailbox.take() {
            self.shared.registry.remove(id);
        }
        self.shared.stats.0.connections.fetch_sub(1, Relaxed);
        // The permit goes back to the semaphore as the field drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubSettings;
    use crate::hub::mailbox::Wire;

    /// A socket that never takes anything: this test writes nothing.
    struct Full;

    impl Wire for Full {
        fn try_write_vectored(&self, _: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    }

    #[tokio::test]
    async fn a_panicking_connection_task_releases_its_slot_and_mailbox() {
        let settings = HubSettings::default();
        let shared = Arc::new(Shared::new(&settings, Default::default()));
        let slots = Arc::new(Semaphore::new(1));
        let slot = Slot::take(&shared, &slots).expect("a free slot");
        assert!(Slot::take(&shared, &slots).is_none(), "the hub is full");
        let mailbox = Arc::new(Mailbox::new(settings.limits, Arc::new(Full)));
        let task = tokio::spawn(async move {
            let mut slot = slot;
            slot.register(mailbox);
            panic!("a bug in a connection task");
        });
        assert!(task.await.expect_err("the task panicked").is_panic());
        assert_eq!(shared.registry.len(), 0, "the mailbox left the registry");
        assert_eq!(shared.stats.report().connections, 0);
        assert!(Slot::take(&shared, &slots).is_some(), "the slot came back");
    }
}
