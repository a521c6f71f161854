//! Layer compression whose bytes do not depend on the number of threads.
//!
//! gzip is done the way pigz does it: the stream is cut into fixed-size
//! chunks, each deflated on its own (primed with the previous chunk's last
//! 32 KiB as dictionary) by a pool of workers, and the pieces are written in
//! order as ONE gzip member with a fixed header (no name, no mtime, fixed OS
//! byte). Chunk boundaries depend only on the data, so the output is the same
//! with 1 thread or 64. zstd uses libzstd's own workers, whose output is the
//! same for any worker count >= 1 (tried with 1, 2 and 4; 0 workers, the
//! single-threaded mode, gives other bytes).
//!
//! Every queue is bounded, so memory stays a few chunks per thread whatever
//! the layer's size.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};
use sha2::{Digest as _, Sha256};

use super::blob::hex;
use super::media;

/// How a layer is compressed (also the `compression` key of the stack files).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Read by every consumer (docker-archive, umoci, oci-image-tool).
    #[default]
    Gzip,
    /// Smaller and faster; podman, skopeo and registries read it.
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media::LAYER_GZIP,
            Compression::Zstd => media::LAYER_ZSTD,
            Compression::None => media::LAYER_TAR,
        }
    }
}

const CHUNK: usize = 256 * 1024;
const DICT: usize = 32 * 1024;
const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;
const MAX_THREADS: usize = 16;
/// libzstd keeps a few jobs of this size per worker in memory; fixing it
/// (rather than the default, 4x the window) bounds memory, and the bytes
/// depend on it, never on the worker count.
const ZSTD_JOB: u32 = 2 * 1024 * 1024;
const ZSTD_MAX_THREADS: usize = 4;

/// Threads for compression: `KILN_THREADS` if set (tests compare 1 with
/// many), else the cores there are, at most 16 to bound memory.
pub fn thread_count() -> usize {
    std::env::var("KILN_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(MAX_THREADS)
}

/// Where the tar stream goes: it is hashed (the diff_id), counted, and
/// compressed into `W`.
pub struct LayerSink<W: Write + Send + 'static> {
    hasher: Sha256,
    size: u64,
    encoder: Encoder<W>,
}

enum Encoder<W: Write + Send + 'static> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write + Send + 'static> LayerSink<W> {
    pub fn new(out: W, compression: Compression, threads: usize) -> io::Result<Self> {
        let encoder = match compression {
            Compression::Gzip => Encoder::Gzip(ParallelGzip::new(out, threads)),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                enc.multithread(threads.clamp(1, ZSTD_MAX_THREADS) as u32)?;
                enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB))?;
                Encoder::Zstd(enc)
            }
            Compression::None => Encoder::None(out),
        };
        Ok(LayerSink {
            hasher: Sha256::new(),
            size: 0,
            encoder,
        })
    }

    /// End the stream: the inner writer, `sha256:<hex>` of the uncompressed
    /// bytes, and their count.
    pub fn finish(self) -> io::Result<(W, String, u64)> {
        let out = match self.encoder {
            Encoder::Gzip(g) => g.finish()?,
            Encoder::Zstd(z) => z.finish()?,
            Encoder::None(w) => w,
        };
        Ok((
            out,
            format!("sha256:{}", hex(&self.hasher.finalize())),
            self.size,
        ))
    }
}

impl<W: Write + Send + 'static> Write for LayerSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.encoder {
            Encoder::Gzip(g) => g.write_all(buf)?,
            Encoder::Zstd(z) => z.write_all(buf)?,
            Encoder::None(w) => w.write_all(buf)?,
        }
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Piece>>,
}

struct Piece {
    deflated: Vec<u8>,
    crc: Crc,
}

/// pigz-style gzip: see the module comment.
struct ParallelGzip<W: Write + Send + 'static> {
    buf: Vec<u8>,
    dict: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    order: Option<SyncSender<Receiver<io::Result<Piece>>>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> ParallelGzip<W> {
    fn new(out: W, threads: usize) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(1);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&job_rx);
                std::thread::spawn(move || worker(&rx))
            })
            .collect();
        let (order_tx, order_rx) = sync_channel::<Receiver<io::Result<Piece>>>(threads + 2);
        let writer = std::thread::spawn(move || write_member(out, &order_rx));
        ParallelGzip {
            buf: Vec::with_capacity(CHUNK),
            dict: Vec::new(),
            jobs: Some(job_tx),
            order: Some(order_tx),
            workers,
            writer: Some(writer),
        }
    }

    fn send(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let dict = std::mem::replace(
            &mut self.dict,
            data[data.len().saturating_sub(DICT)..].to_vec(),
        );
        let (reply, result) = sync_channel(1);
        let ordered = self.order.as_ref().is_some_and(|o| o.send(result).is_ok());
        let job = Job {
            data,
            dict,
            last,
            reply,
        };
        if ordered && self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok()) {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    /// Why the writer thread ended early: its own error (a full disk, with
    /// the blob's path) is what the user must see, not a closed channel.
    fn stopped(&mut self) -> io::Error {
        self.order = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the gzip writer panicked"),
            _ => io::Error::other("the gzip writer stopped"),
        }
    }

    fn finish(mut self) -> io::Result<W> {
        self.send(true)?;
        self.jobs = None;
        self.order = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.writer
            .take()
            .expect("finish runs once")
            .join()
            .map_err(|_| io::Error::other("the gzip writer panicked"))?
    }
}

impl<W: Write + Send + 'static> Drop for ParallelGzip<W> {
    /// On an error upstream, stop the threads and drop the output (which
    /// removes an unfinished blob) before the caller goes on.
    fn drop(&mut self) {
        self.jobs = None;
        self.order = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl<W: Write + Send + 'static> Write for ParallelGzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let total = buf.len();
        while !buf.is_empty() {
            // A full chunk is sent only when more data follows, so the last
            // chunk is always the one `finish` sends with the final block.
            if self.buf.len() == CHUNK {
                self.send(false)?;
            }
            let n = (CHUNK - self.buf.len()).min(buf.len());
            self.buf.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A fresh deflater per chunk: a reset one was seen to emit bytes that
        // depended on the chunk it compressed before, i.e. on scheduling.
        let mut compress = Compress::new(flate2::Compression::new(GZIP_LEVEL), false);
        let piece = deflate_chunk(&mut compress, &job.data, &job.dict, job.last);
        let _ = job.reply.send(piece);
    }
}

fn deflate_chunk(c: &mut Compress, data: &[u8], dict: &[u8], last: bool) -> io::Result<Piece> {
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == data.len();
        let done = if last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            break;
        }
        out.reserve(64 * 1024);
    }
    let mut crc = Crc::new();
    crc.update(data);
    Ok(Piece { deflated: out, crc })
}

/// gzip header: deflate, no flags, mtime 0, no extra flags, OS "unknown".
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn write_member<W: Write>(
    mut out: W,
    order: &Receiver<Receiver<io::Result<Piece>>>,
) -> io::Result<W> {
    out.write_all(&GZIP_HEADER)?;
    let mut crc = Crc::new();
    for pending in order {
        let piece = pending
            .recv()
            .map_err(|_| io::Error::other("a gzip worker stopped"))??;
        out.write_all(&piece.deflated)?;
        crc.combine(&piece.crc);
    }
    out.write_all(&crc.sum().to_le_bytes())?;
    out.write_all(&crc.amount().to_le_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..3 * CHUNK + 777)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[(i % 3) & 1] % 17)
            .collect()
    }

    fn gzip(data: &[u8], threads: usize) -> Vec<u8> {
        let mut sink = LayerSink::new(Vec::new(), Compression::Gzip, threads).unwrap();
        for piece in data.chunks(10_000) {
            sink.write_all(piece).unwrap();
        }
        sink.finish().unwrap().0
    }

    #[test]
    fn gzip_is_one_member_and_independent_of_threads() {
        let data = sample();
        let one = gzip(&data, 1);
        assert_eq!(one, gzip(&data, 3));
        assert_eq!(&one[..10], &GZIP_HEADER);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn gzip_of_exact_chunks_and_of_nothing() {
        for data in [vec![], vec![7u8; 2 * CHUNK]] {
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gzip(&data, 2)[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    /// A disk that fills after `0` bytes.
    struct Full(usize);

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.0 -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_output_error_is_the_error_whatever_the_compression() {
        let data = sample();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let mut sink = LayerSink::new(Full(1000), compression, 2).unwrap();
            let err = data
                .chunks(10_000)
                .try_for_each(|piece| sink.write_all(piece))
                .and_then(|()| sink.finish().map(drop))
                .unwrap_err();
            assert_eq!(
                err.raw_os_error(),
                Some(libc::ENOSPC),
                "{compression:?}: {err}"
            );
        }
    }

    #[test]
    fn zstd_is_independent_of_threads() {
        let data = sample();
        let z = |n| {
            let mut sink = LayerSink::new(Vec::new(), Compression::Zstd, n).unwrap();
            sink.write_all(&data).unwrap();
            sink.finish().unwrap().0
        };
        assert_eq!(z(1), z(2));
    }
}
