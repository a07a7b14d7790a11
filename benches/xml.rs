//! Render, the re-check of rendered bytes, and parse of the ZAL at realistic (10 000) and stress (50 000) scale, 3
//! Gegevensdiensten with 2 Systeemrollen each (SPEC §12). Targets: render ≤ 0.25 s at 10k.

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

use stelselnode::domain::ListKind;
use stelselnode::sample::{SampleSize, network};
use stelselnode::xml::{check_rendered, parse_list, render_list};

fn zal(c: &mut Criterion) {
    let mut group = c.benchmark_group("zal");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for size in [10_000, 50_000] {
        let list = network(SampleSize::realistic(size), Utc::now()).zal;
        let bytes = render_list(&list);
        eprintln!("ZAL of {size} Zorgaanbieders: {} bytes", bytes.len());
        group.bench_function(format!("render/{size}"), |b| {
            b.iter(|| render_list(black_box(&list)));
        });
        group.bench_function(format!("check/{size}"), |b| {
            b.iter(|| check_rendered(black_box(&bytes), ListKind::Zal).unwrap());
        });
        group.bench_function(format!("parse/{size}"), |b| {
            b.iter(|| parse_list(black_box(&bytes), ListKind::Zal).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, zal);
criterion_main!(benches);
