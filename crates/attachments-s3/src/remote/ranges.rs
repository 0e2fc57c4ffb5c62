//! Ranged downloads: `GetObject` with a `Range` header (and `If-Match` after the first range),
//! the object's size and version read from the answer, anything else refused clearly.

use std::ops::Range;

use attachments_core::{
    Attachment, ByteStream, Error, ErrorKind, RangeBody, Result, byte_stream_from, object_changed,
};
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;

use super::S3RemoteStorage;
use crate::error::classify;

impl S3RemoteStorage {
    /// `RemoteStorage::download_range` for S3.
    pub(super) async fn get_range(
        &self,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        if range.is_empty() {
            return Err(Error::invalid_input(format!(
                "an empty byte range ({}..{}) of {:?}",
                range.start, range.end, attachment.filename
            )));
        }
        let key = self.key(attachment)?;
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .set_if_match(version.map(str::to_owned))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(error) => {
                return match error.raw_response().map(|r| r.status().as_u16()) {
                    Some(412) => Err(object_changed(&attachment.filename)),
                    Some(416) => self.unsatisfiable(&key, attachment, range, version).await,
                    _ => Err(classify(
                        error,
                        format!("downloading bytes {}..{} of {key}", range.start, range.end),
                    )),
                };
            }
        };
        let length = u64::try_from(output.content_length().unwrap_or(-1)).ok();
        let object_size = match output.content_range() {
            Some(header) => {
                let (start, end, total) = parse_content_range(header)
                    .ok_or_else(|| garbled(&key, &format!("a Content-Range of {header:?}")))?;
                let expected_end = range.end.min(total);
                if start != range.start || end + 1 != expected_end {
                    return Err(garbled(
                        &key,
                        &format!(
                            "bytes {start}..{} for the range {}..{expected_end}",
                            end + 1,
                            range.start
                        ),
                    ));
                }
                total
            }
            // A server that ignores ranges sends the whole object: that is the range only when
            // the range starts at 0 and covers it.
            None => match length {
                Some(length) if range.start == 0 && length <= range.end => length,
                _ => {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("the server ignored the byte range asked of {key}"),
                    ));
                }
            },
        };
        let found = output.e_tag().map(str::to_owned);
        // a server that ignores If-Match still says which version it sent
        if version.is_some_and(|wanted| found.as_deref() != Some(wanted)) {
            return Err(object_changed(&attachment.filename));
        }
        Ok(RangeBody::new(object_size, found, body_stream(output.body)))
    }

    /// A range the server found unsatisfiable: the first range of an empty object (empty), or
    /// one past the end (refused).
    async fn unsatisfiable(
        &self,
        key: &str,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(version.map(str::to_owned))
            .send()
            .await
            .map_err(|e| {
                if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) {
                    object_changed(&attachment.filename)
                } else {
                    classify(e, format!("looking up {key}"))
                }
            })?;
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        if range.start == size {
            let empty = byte_stream_from(Vec::<bytes::Bytes>::new());
            return Ok(RangeBody::new(size, head.e_tag().map(str::to_owned), empty));
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "bytes from {} of {key} asked for, it holds {size}",
                range.start
            ),
        ))
    }
}

/// `bytes <first>-<last>/<total>` as numbers (a `*` total is not an answer to a range).
fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let rest = header.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

fn garbled(key: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the server answered a range of {key} with {what}"),
    )
    .with_retryable(true)
}

/// The SDK's body as a `ByteStream`; a connection broken mid-body is worth another try.
pub(super) fn body_stream(body: SdkByteStream) -> ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        body,
        move |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(error) => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    error,
                )),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_read_and_garbage_is_not() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0, 99, 1000)));
        assert_eq!(
            parse_content_range("bytes 900-999/1000"),
            Some((900, 999, 1000))
        );
        for garbage in [
            "bytes */1000",
            "bytes 0-99/*",
            "bytes 100-99/1000",
            "bytes 0-1000/1000",
            "items 0-99/1000",
            "bytes 0-x/1000",
            "",
        ] {
            assert_eq!(parse_content_range(garbage), None, "{garbage:?}");
        }
    }
}
