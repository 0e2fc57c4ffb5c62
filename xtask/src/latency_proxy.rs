//! A TCP proxy on loopback that delays every byte by a fixed time in each direction, like a
//! mobile network in front of the S3 server. Bytes keep their order and pace: a chunk read at
//! `t` is written at `t + delay`, so a stream is delayed, not slowed down chunk by chunk.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A running proxy; it serves until the process ends.
pub(crate) struct LatencyProxy {
    pub(crate) address: SocketAddr,
}

impl LatencyProxy {
    /// Forward a free loopback port to `upstream`, adding `delay` each way.
    pub(crate) fn start(upstream: SocketAddr, delay: Duration) -> Result<LatencyProxy, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding the proxy: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                pipe(client_read, server, delay);
                pipe(server_read, client, delay);
            }
        });
        Ok(LatencyProxy { address })
    }
}

/// Copy `from` to `to`, each chunk `delay` after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (sender, receiver) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender
                        .send((Instant::now() + delay, buffer[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // dropping the sender tells the writer the stream ended
    });
    thread::spawn(move || {
        for (due, chunk) in receiver {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
