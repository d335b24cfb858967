//! Transport data: sealing and opening 64-byte and 1420-byte packets with
//! [`Keypair::seal_in_place`] / [`Keypair::open_in_place`], next to the raw ChaCha20-Poly1305
//! cost of the same bytes through the AEAD the keypair uses ([`TransportCipher`], ring) and
//! through the `chacha20poly1305` crate (RustCrypto, which it replaced).
//!
//! The gap between `keypair` and `transport_cipher` is what the protocol adds per packet: the
//! header, padding, the atomic send counter, the replay window and its lock.

#![allow(missing_docs)]

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
mod common;

use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion, Throughput};
use protocol::noise::crypto::TransportCipher;
use protocol::noise::handshake::SessionKeys;
use protocol::noise::keypair::Keypair;
use protocol::noise::messages::{TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};
use std::hint::black_box;
use std::time::Instant;

const SIZES: [usize; 2] = [64, 1420];
const MTU: usize = 1420;

fn keypairs() -> (Keypair, Keypair) {
    let now = Instant::now();
    let a = SessionKeys {
        send: [1; 32],
        recv: [2; 32],
        local_index: 10,
        remote_index: 20,
        initiator: true,
    };
    let b = SessionKeys {
        send: [2; 32],
        recv: [1; 32],
        local_index: 20,
        remote_index: 10,
        initiator: false,
    };
    (Keypair::new(&a, now), Keypair::new(&b, now))
}

fn keypair<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("keypair");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let (a, b) = keypairs();
        let mut buf = vec![0x45u8; size + TRANSPORT_OVERHEAD];
        g.bench_function(format!("seal/{size}"), |bench| {
            bench.iter(|| {
                let n = a
                    .seal_in_place(black_box(&mut buf), size, MTU)
                    .expect("seal");
                black_box(n)
            })
        });
        // Every open needs a fresh counter, so each gets its own sealed message (sealing is
        // outside the measurement).
        let template = vec![0x45u8; size + TRANSPORT_OVERHEAD];
        g.bench_function(format!("open/{size}"), |bench| {
            bench.iter_batched_ref(
                || {
                    let mut m = template.clone();
                    let n = a.seal_in_place(&mut m, size, MTU).expect("seal");
                    m.truncate(n);
                    m
                },
                |m| b.open_in_place(black_box(m)).expect("open"),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("seal+open/{size}"), |bench| {
            bench.iter(|| {
                buf[TRANSPORT_HEADER_LEN] = 0x45;
                let n = a
                    .seal_in_place(black_box(&mut buf), size, MTU)
                    .expect("seal");
                black_box(b.open_in_place(&mut buf[..n]).expect("open"))
            })
        });
    }
    g.finish();
}

fn raw_aead<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("chacha20poly1305");
    let cipher = ChaCha20Poly1305::new(&[1u8; 32].into());
    let mut counter = 0u64;
    let mut nonce = move || {
        counter += 1;
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_le_bytes());
        Nonce::from(n)
    };
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x45u8; size];
        g.bench_function(format!("seal/{size}"), |bench| {
            bench.iter(|| {
                let t = cipher
                    .encrypt_inout_detached(&nonce(), &[], black_box(&mut buf[..]).into())
                    .expect("seal");
                black_box(t)
            })
        });
        let plain = vec![0x45u8; size];
        g.bench_function(format!("open/{size}"), |bench| {
            bench.iter_batched_ref(
                || {
                    let n = nonce();
                    let mut m = plain.clone();
                    let t: Tag = cipher
                        .encrypt_inout_detached(&n, &[], (&mut m[..]).into())
                        .expect("seal");
                    (n, m, t)
                },
                |(n, m, t)| {
                    cipher
                        .decrypt_inout_detached(n, &[], black_box(&mut m[..]).into(), t)
                        .expect("open")
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("seal+open/{size}"), |bench| {
            bench.iter(|| {
                let n = nonce();
                let t = cipher
                    .encrypt_inout_detached(&n, &[], black_box(&mut buf[..]).into())
                    .expect("seal");
                cipher
                    .decrypt_inout_detached(&n, &[], black_box(&mut buf[..]).into(), &t)
                    .expect("open");
            })
        });
    }
    g.finish();
}

fn transport_cipher<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("transport_cipher");
    let cipher = TransportCipher::new(&[1u8; 32]);
    let mut counter = 0u64;
    let mut next = move || {
        counter += 1;
        counter
    };
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x45u8; size];
        g.bench_function(format!("seal/{size}"), |bench| {
            bench.iter(|| black_box(cipher.seal_in_place(next(), black_box(&mut buf[..]))))
        });
        let plain = vec![0x45u8; size];
        g.bench_function(format!("open/{size}"), |bench| {
            bench.iter_batched_ref(
                || {
                    let n = next();
                    let mut m = plain.clone();
                    let t = cipher.seal_in_place(n, &mut m);
                    (n, m, t)
                },
                |(n, m, t)| {
                    cipher
                        .open_in_place(*n, black_box(&mut m[..]), t)
                        .expect("open")
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("seal+open/{size}"), |bench| {
            bench.iter(|| {
                let n = next();
                let t = cipher.seal_in_place(n, black_box(&mut buf[..]));
                cipher
                    .open_in_place(n, black_box(&mut buf[..]), &t)
                    .expect("open");
            })
        });
    }
    g.finish();
}

/// Every benchmark of this file, for either clock.
fn all<M: Measurement>(c: &mut Criterion<M>) {
    keypair(c);
    transport_cipher(c);
    raw_aead(c);
}

fn main() {
    common::run(all, all);
}
