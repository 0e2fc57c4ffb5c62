//! The app's update hooks: the app's closure takes the attachment row, the store's hook only
//! the connection, so the row is bound in once it is known.

use futures_util::future::BoxFuture;

use crate::error::BoxError;
use crate::model::Attachment;
use crate::store::{AttachmentStore, UpdateHook};

/// An app hook waiting for its attachment row.
pub(super) type BoundHook<C> = Box<dyn FnOnce(Attachment) -> UpdateHook<C> + Send + 'static>;

pub(super) fn bind_hook<S, F>(hook: F) -> BoundHook<S::Connection>
where
    S: AttachmentStore,
    F: for<'c> FnOnce(&'c mut S::Connection, Attachment) -> BoxFuture<'c, Result<(), BoxError>>
        + Send
        + 'static,
{
    Box::new(move |attachment: Attachment| -> UpdateHook<S::Connection> {
        Box::new(move |connection: &mut S::Connection| hook(connection, attachment))
    })
}
