//! The bytes of every saved file follow from its seed and length alone, so the verifier can
//! recompute what was saved without keeping a copy, and a file's sizes pick the upload path.

use std::io::Read;
use std::path::Path;

use attachments::{BoxError, ByteStream, Bytes};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

/// The S3 adapter sends files up to this size from memory in one `PutObject`.
pub(crate) const MEMORY_MAX: u64 = MIB;
/// The worker lowers the S3 multipart threshold to this (from 16 MiB), so that multipart
/// uploads happen in a run of a few seconds; between `MEMORY_MAX` and it, one streamed put.
pub(crate) const MULTIPART_THRESHOLD: u64 = 6 * MIB;
/// The largest file saved: three parts of the smallest size S3 accepts (5 MiB), plus a bit.
const LARGEST: u64 = 16 * MIB;

/// Which upload path a file of this size takes on S3 (the directory remote takes one path).
pub(crate) fn size_class(len: u64) -> &'static str {
    if len <= MEMORY_MAX {
        "memory"
    } else if len < MULTIPART_THRESHOLD {
        "streamed"
    } else {
        "multipart"
    }
}

/// A file size: mostly small (cheap, so many saves finish between kills), a quarter on the
/// streamed path and one in ten multipart, so kills land inside each of them.
pub(crate) fn pick_size(draw: u64, below: &mut impl FnMut(u64) -> u64) -> u64 {
    match draw % 20 {
        0..=12 => 1 + below(MEMORY_MAX),
        13..=17 => MEMORY_MAX + 1 + below(MULTIPART_THRESHOLD - MEMORY_MAX - 1),
        _ => MULTIPART_THRESHOLD + below(LARGEST - MULTIPART_THRESHOLD + 1),
    }
}

/// splitmix64: each 8-byte word of a file depends on the seed and its position, so a part
/// written at the wrong offset or a file of another seed never hashes the same.
fn word(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn bytes_at(seed: u64, offset: u64, len: u64) -> Vec<u8> {
    let first_word = offset / 8;
    let last_word = (offset + len).div_ceil(8);
    let mut out = Vec::with_capacity(usize::try_from((last_word - first_word) * 8).unwrap_or(0));
    for index in first_word..last_word {
        out.extend_from_slice(&word(seed, index).to_le_bytes());
    }
    let skip = usize::try_from(offset % 8).unwrap_or(0);
    let take = usize::try_from(len).unwrap_or(0);
    out.drain(..skip);
    out.truncate(take);
    out
}

/// Chunk sizes cycle through odd values so that chunk boundaries never line up with the
/// adapters' own block or part sizes.
const CHUNK_SIZES: [u64; 4] = [256 * 1024, 7, 100_003, 64 * 1024];

/// The contents of file `seed` of `len` bytes, as the stream `save_file` reads.
pub(crate) fn content_stream(seed: u64, len: u64) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        (0u64, 0usize),
        move |(offset, turn)| async move {
            if offset >= len {
                return None;
            }
            let size = CHUNK_SIZES[turn % CHUNK_SIZES.len()].min(len - offset);
            let chunk = Bytes::from(bytes_at(seed, offset, size));
            Some((Ok(chunk), (offset + size, turn + 1)))
        },
    ))
}

/// `sha256:<hex>`, the form the queue records.
fn checksum_text(hasher: Sha256) -> String {
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The checksum of file `seed` of `len` bytes, computed here, not by the queue.
pub(crate) fn content_checksum(seed: u64, len: u64) -> String {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < len {
        let size = MIB.min(len - offset);
        hasher.update(bytes_at(seed, offset, size));
        offset += size;
    }
    checksum_text(hasher)
}

/// The checksum of a local file.
pub(crate) fn file_checksum(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(checksum_text(hasher));
        }
        hasher.update(&buffer[..read]);
    }
}

/// The checksum of a stream (a remote object).
pub(crate) async fn stream_checksum(mut stream: ByteStream) -> Result<String, BoxError> {
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(checksum_text(hasher))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stream_and_the_independent_checksum_agree() {
        for len in [0, 1, 7, 8, 9, 100_003, 700_001] {
            let streamed = stream_checksum(content_stream(42, len)).await.unwrap();
            assert_eq!(streamed, content_checksum(42, len), "len {len}");
        }
        assert_ne!(content_checksum(1, 4096), content_checksum(2, 4096));
    }
}
