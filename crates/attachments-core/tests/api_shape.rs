//! Compile-time promises of the public API: traits are dyn-compatible and the futures of the
//! queue are `Send`, so they can be spawned on a multi-threaded runtime.

use std::sync::Arc;

use attachments_core::{
    AttachmentErrorHandler, AttachmentId, AttachmentQueue, AttachmentStore, Error, LocalStorage,
    RemoteStorage, SaveFile,
};

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync<T: Send + Sync>() {}

#[allow(dead_code)]
fn traits_are_dyn_compatible(
    _local: Arc<dyn LocalStorage>,
    _remote: Arc<dyn RemoteStorage>,
    _handler: Arc<dyn AttachmentErrorHandler>,
    _store: Arc<dyn AttachmentStore<Connection = ()>>,
) {
}

#[allow(dead_code)]
fn queue_futures_are_send<S: AttachmentStore>(
    queue: AttachmentQueue<S>,
    file: SaveFile,
    id: AttachmentId,
) {
    assert_send(&queue.save_file(file));
    assert_send(&queue.delete_file(&id));
    assert_send(&queue.sync_now());
    assert_send(&queue.start_sync());
    assert_send(&queue.stop_sync());
    assert_send(&queue.expire_cache());
    assert_send(&queue.clear_queue());
    assert_send(&queue.retry(&id));
    assert_send(&queue.status());
}

#[test]
fn public_types_are_send_and_sync() {
    assert_send_sync::<Error>();
    assert_send_sync::<AttachmentId>();
    assert_send_sync::<attachments_core::AttachmentEvent>();
}
