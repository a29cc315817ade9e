use mneme_vector::exact::{self, dot, dot_naive};
use mneme_vector::synth::{SplitMix64, normalize};
use mneme_vector::{Error, Hit, Index, IndexConfig, Vectors};

fn random_store(dim: usize, n: usize, seed: u64) -> Vectors {
    let mut rng = SplitMix64::new(seed);
    let mut v = Vectors::new(dim);
    let mut row = vec![0f32; dim];
    for i in 0..n {
        if i % 7 == 3 && i > 0 {
            // Duplicate an earlier vector: exact ties that must be broken by id.
            let j = rng.below(i as u64) as u32;
            row.copy_from_slice(v.get(j).unwrap());
        } else {
            row.iter_mut().for_each(|x| *x = rng.gauss());
            normalize(&mut row);
        }
        v.push(&row).unwrap();
    }
    v
}

/// The reference: score everything, sort by (score desc, id asc), cut.
fn naive(v: &Vectors, q: &[f32], k: usize, keep: &dyn Fn(u32) -> bool) -> Vec<Hit> {
    let mut all: Vec<Hit> = (0..v.len() as u32)
        .filter(|&id| keep(id))
        .map(|id| Hit {
            id,
            score: dot(q, v.get(id).unwrap()),
        })
        .collect();
    all.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap().then(a.id.cmp(&b.id)));
    all.truncate(k);
    all
}

#[test]
fn kernel_matches_f64_reference() {
    let mut rng = SplitMix64::new(1);
    for len in [0, 1, 7, 15, 16, 17, 63, 64, 65, 100, 383, 384, 385, 1000] {
        let a: Vec<f32> = (0..len).map(|_| rng.gauss()).collect();
        let b: Vec<f32> = (0..len).map(|_| rng.gauss()).collect();
        let exact: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let tol = 1e-4 * (1.0 + len as f64).sqrt();
        assert!((f64::from(dot(&a, &b)) - exact).abs() < tol, "len {len}");
        assert!(
            (f64::from(dot_naive(&a, &b)) - exact).abs() < tol,
            "len {len}"
        );
    }
}

#[test]
fn exact_search_equals_naive_reference() {
    for (dim, n) in [(37, 400), (384, 300)] {
        let v = random_store(dim, n, dim as u64);
        let mut rng = SplitMix64::new(99);
        let filters: Vec<Box<dyn Fn(u32) -> bool>> = vec![
            Box::new(|_| true),
            Box::new(|id| id % 3 != 0),
            Box::new(|id| id % 50 == 1),
            Box::new(|_| false),
        ];
        for qi in 0..20 {
            // Half the queries are stored vectors (whose duplicates tie exactly).
            let q: Vec<f32> = if qi % 2 == 0 {
                v.get(rng.below(n as u64) as u32).unwrap().to_vec()
            } else {
                let mut q: Vec<f32> = (0..dim).map(|_| rng.gauss()).collect();
                normalize(&mut q);
                q
            };
            for k in [0, 1, 5, 10, n - 1, n, n + 10] {
                for (fi, f) in filters.iter().enumerate() {
                    let want = naive(&v, &q, k, f.as_ref());
                    let got = if fi == 0 {
                        exact::search(&v, &q, k, None).unwrap()
                    } else {
                        exact::search(&v, &q, k, Some(f.as_ref())).unwrap()
                    };
                    assert_eq!(got, want, "dim {dim} query {qi} k {k} filter {fi}");
                }
            }
        }
    }
}

#[test]
fn ties_are_broken_by_id() {
    let mut v = Vectors::new(2);
    for _ in 0..5 {
        v.push(&[0.0, 1.0]).unwrap();
    }
    v.push(&[1.0, 0.0]).unwrap();
    let hits = exact::search(&v, &[0.0, 1.0], 3, None).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 1, 2]);
    let odd = |id: u32| id % 2 == 1;
    let hits = exact::search(&v, &[0.0, 1.0], 10, Some(&odd)).unwrap();
    assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![1, 3, 5]);
}

#[test]
fn empty_and_invalid_inputs() {
    let v = Vectors::new(4);
    assert!(exact::search(&v, &[0.0; 4], 10, None).unwrap().is_empty());
    assert_eq!(
        exact::search(&v, &[0.0; 3], 10, None),
        Err(Error::DimensionMismatch {
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        exact::search(&v, &[f32::NAN, 0.0, 0.0, 0.0], 1, None),
        Err(Error::NonFinite)
    );
    let mut v = v;
    assert_eq!(
        v.push(&[1.0; 5]),
        Err(Error::DimensionMismatch {
            expected: 4,
            actual: 5
        })
    );
    assert_eq!(
        v.push(&[1.0, f32::INFINITY, 0.0, 0.0]),
        Err(Error::NonFinite)
    );
    assert!(v.is_empty());
    assert_eq!(v.push(&[1.0; 4]), Ok(0));
    assert_eq!(v.get(0), Some(&[1.0f32; 4][..]));
    assert_eq!(v.get(1), None);
    assert_eq!(v.get(u32::MAX), None);
    assert!(Vectors::from_flat(0, vec![]).is_err());
    assert!(Vectors::from_flat(3, vec![0.0; 4]).is_err());

    let index = Index::new(4, IndexConfig::default()).unwrap();
    assert!(index.search(&[1.0; 4], 5, None).unwrap().is_empty());
    assert!(index.search(&[1.0; 2], 5, None).is_err());
    assert!(Index::new(0, IndexConfig::default()).is_err());
}

#[test]
fn vectors_round_trip_and_reject_damage() {
    let v = random_store(5, 13, 3);
    let bytes = v.to_bytes();
    assert_eq!(Vectors::from_bytes(&bytes).unwrap(), v);
    let empty = Vectors::new(384);
    assert_eq!(Vectors::from_bytes(&empty.to_bytes()).unwrap(), empty);

    for cut in 0..bytes.len() {
        assert!(
            Vectors::from_bytes(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(Vectors::from_bytes(&b).is_err(), "byte {i} bit {bit:#x}");
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Vectors::from_bytes(&longer).is_err());
    assert!(matches!(
        Vectors::from_bytes(b"not a vector file at all"),
        Err(Error::Corrupt(_))
    ));
}

/// Rewrites the checksum so that the structural validation, not the checksum, must catch
/// the damage.
fn reseal(b: &mut [u8]) {
    let n = b.len() - 8;
    let sum = xxhash_rust::xxh3::xxh3_64(&b[..n]);
    b[n..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn forged_vector_headers_are_rejected() {
    let v = random_store(5, 4, 3);
    let bytes = v.to_bytes();
    // count (offset 12..20) claims more vectors than present.
    let mut b = bytes.clone();
    b[12] = 200;
    reseal(&mut b);
    assert!(matches!(Vectors::from_bytes(&b), Err(Error::Truncated(_))));
    let mut b = bytes.clone();
    b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(Vectors::from_bytes(&b).is_err());
    // dimension 0.
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&0u32.to_le_bytes());
    reseal(&mut b);
    assert!(Vectors::from_bytes(&b).is_err());
    // a NaN in the data.
    let mut b = bytes.clone();
    b[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut b);
    assert_eq!(Vectors::from_bytes(&b), Err(Error::NonFinite));
}
