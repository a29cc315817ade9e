//! The exact floating-point summation orders of the numpy / OpenBLAS calls KATO's metrics go
//! through, so that `itfdf_similarity` (compared bit for bit) comes out identical.
//!
//! - `np.dot(a, b)` and `np.linalg.norm(v)` (1-D): OpenBLAS `ddot`: a fused multiply-add
//!   chain below 16 elements; above, the AVX-512 kernel's lane-blocked order.
//! - `np.linalg.norm(M, axis=1)`: numpy's pairwise summation of the squared row, no FMA.
//! - `M @ v` with two or more rows: OpenBLAS `dgemv_t` (Haswell 4x4 micro-kernel and its
//!   2- and 1-column remainders).
//!
//! The dense forms are the models, checked against numpy's own output in the tests; the
//! sparse forms used at run time are tested to give the same bits.

fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// OpenBLAS `ddot` (x86-64 AVX-512 kernel).
pub fn ddot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let n1 = n & !15;
    let mut dot = 0.0;
    if n1 > 0 {
        let mut a = [[0.0f64; 4]; 4];
        let mut i = 0;
        let n32 = n1 & !31;
        if n32 > 0 {
            let mut z = [[0.0f64; 8]; 4];
            while i < n32 {
                for (k, lanes) in z.iter_mut().enumerate() {
                    for (l, lane) in lanes.iter_mut().enumerate() {
                        *lane = fma(x[i + 8 * k + l], y[i + 8 * k + l], *lane);
                    }
                }
                i += 32;
            }
            for k in 0..4 {
                for l in 0..4 {
                    a[k][l] = z[k][l] + z[k][l + 4];
                }
            }
        }
        while i < n1 {
            for (k, lanes) in a.iter_mut().enumerate() {
                for (l, lane) in lanes.iter_mut().enumerate() {
                    *lane = fma(x[i + 4 * k + l], y[i + 4 * k + l], *lane);
                }
            }
            i += 16;
        }
        let s: Vec<f64> = (0..4)
            .map(|l| ((a[0][l] + a[1][l]) + a[2][l]) + a[3][l])
            .collect();
        dot = (s[0] + s[2]) + (s[1] + s[3]);
    }
    for i in n1..n {
        dot = fma(y[i], x[i], dot);
    }
    dot
}

#[cfg(test)]
/// numpy's pairwise summation (`add.reduce` over a contiguous axis).
pub fn pairwise_sum(v: &[f64]) -> f64 {
    let n = v.len();
    if n < 8 {
        let mut r = 0.0;
        for &e in v {
            r += e;
        }
        r
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += v[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += v[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&v[..n2]) + pairwise_sum(&v[n2..])
    }
}

#[cfg(test)]
/// `np.linalg.norm(row)` for every row of a matrix: the square root of the pairwise sum of
/// squares.
pub fn row_norm(row: &[f64]) -> f64 {
    let squares: Vec<f64> = row.iter().map(|x| x * x).collect();
    pairwise_sum(&squares).sqrt()
}

#[cfg(test)]
/// `M @ x` for the rows of `M` (each of length `x.len()`), as numpy computes it: `ddot` for a
/// single row, OpenBLAS `dgemv_t` for two or more.
pub fn matvec(rows: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    if rows.len() == 1 {
        return vec![ddot(&rows[0], x)];
    }
    let m = x.len();
    let m1 = m & !3;
    let m3 = m & 3;
    let n = rows.len();
    let n4 = n & !3;
    let mut y = vec![0.0f64; n];
    if m1 > 0 {
        for (j, row) in rows.iter().enumerate() {
            y[j] = if j < n4 {
                kernel_4x4(row, x, m1)
            } else if j < n4 + (n & 2) {
                kernel_4x2(row, x, m1)
            } else {
                kernel_4x1(row, x, m1)
            };
        }
    }
    for (j, row) in rows.iter().enumerate() {
        let b = m1;
        y[j] = match m3 {
            3 => {
                y[j] + fma(
                    row[b + 2],
                    x[b + 2],
                    fma(row[b], x[b], row[b + 1] * x[b + 1]),
                )
            }
            2 => y[j] + fma(row[b], x[b], row[b + 1] * x[b + 1]),
            1 => fma(row[b], x[b], y[j]),
            _ => y[j],
        };
    }
    y
}

#[cfg(test)]
fn kernel_4x4(a: &[f64], x: &[f64], m1: usize) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut i = 0;
    if m1 & 4 != 0 {
        for l in 0..4 {
            acc[l] = fma(a[l], x[l], acc[l]);
        }
        i = 4;
    }
    while i < m1 {
        for l in 0..4 {
            acc[l] = fma(a[i + l], x[i + l], acc[l]);
            acc[l] = fma(a[i + 4 + l], x[i + 4 + l], acc[l]);
        }
        i += 8;
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

#[cfg(test)]
fn kernel_4x2(a: &[f64], x: &[f64], m1: usize) -> f64 {
    let mut acc = [0.0f64; 2];
    let mut i = 0;
    while i < m1 {
        for l in 0..2 {
            acc[l] += a[i + l] * x[i + l];
            acc[l] += a[i + 2 + l] * x[i + 2 + l];
        }
        i += 4;
    }
    acc[0] + acc[1]
}

#[cfg(test)]
fn kernel_4x1(a: &[f64], x: &[f64], m1: usize) -> f64 {
    let mut first = [0.0f64; 2];
    let mut second = [0.0f64; 2];
    let mut i = 0;
    while i < m1 {
        for l in 0..2 {
            first[l] += a[i + l] * x[i + l];
            second[l] += a[i + 2 + l] * x[i + 2 + l];
        }
        i += 4;
    }
    (first[0] + second[0]) + (first[1] + second[1])
}

/// A vector of length `len` given by its non-zero entries `(position, value)`, ascending.
///
/// The sparse forms below give exactly the dense results: every kernel assigns terms to
/// lanes by position, and a zero term leaves an accumulator unchanged (all values here are
/// non-negative, so no negative zero can arise).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sparse {
    pub len: usize,
    pub entries: Vec<(usize, f64)>,
}

impl Sparse {
    pub fn dense(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.len];
        for &(i, v) in &self.entries {
            out[i] = v;
        }
        out
    }

    fn get(&self, position: usize) -> f64 {
        self.entries
            .binary_search_by_key(&position, |e| e.0)
            .map_or(0.0, |i| self.entries[i].1)
    }
}

/// `ddot` of `n`-element vectors given as their non-zero products' operands `(position, x,
/// y)`, ascending.
fn ddot_terms(n: usize, terms: impl Iterator<Item = (usize, f64, f64)>) -> f64 {
    let n1 = n & !15;
    let n32 = n1 & !31;
    let mut z = [[0.0f64; 8]; 4];
    let mut a = [[0.0f64; 4]; 4];
    let mut tail = Vec::new();
    let mut folded = n32 == 0;
    for (p, x, y) in terms {
        if p < n32 {
            let (k, l) = ((p % 32) / 8, p % 8);
            z[k][l] = fma(x, y, z[k][l]);
            continue;
        }
        if !folded {
            fold(&z, &mut a);
            folded = true;
        }
        if p < n1 {
            let (k, l) = ((p % 16) / 4, p % 4);
            a[k][l] = fma(x, y, a[k][l]);
        } else {
            tail.push((x, y));
        }
    }
    if !folded {
        fold(&z, &mut a);
    }
    let mut dot = 0.0;
    if n1 > 0 {
        let s: Vec<f64> = (0..4)
            .map(|l| ((a[0][l] + a[1][l]) + a[2][l]) + a[3][l])
            .collect();
        dot = (s[0] + s[2]) + (s[1] + s[3]);
    }
    for (x, y) in tail {
        dot = fma(y, x, dot);
    }
    dot
}

fn fold(z: &[[f64; 8]; 4], a: &mut [[f64; 4]; 4]) {
    for k in 0..4 {
        for l in 0..4 {
            a[k][l] = z[k][l] + z[k][l + 4];
        }
    }
}

/// `ddot(v, v)` of a sparse vector.
pub fn sparse_self_dot(v: &Sparse) -> f64 {
    ddot_terms(v.len, v.entries.iter().map(|&(p, x)| (p, x, x)))
}

/// `np.linalg.norm(row)` of a sparse row (numpy's pairwise sum of squares).
pub fn sparse_row_norm(row: &Sparse) -> f64 {
    let squares: Vec<(usize, f64)> = row.entries.iter().map(|&(p, x)| (p, x * x)).collect();
    sparse_pairwise(&squares, 0, row.len).sqrt()
}

/// numpy's pairwise sum over positions `lo..hi` of a vector given by its non-zero entries.
fn sparse_pairwise(entries: &[(usize, f64)], lo: usize, hi: usize) -> f64 {
    let n = hi - lo;
    let within = |from: usize, to: usize| {
        let start = entries.partition_point(|e| e.0 < from);
        let end = entries.partition_point(|e| e.0 < to);
        &entries[start..end]
    };
    if n < 8 {
        let mut r = 0.0;
        for &(_, v) in within(lo, hi) {
            r += v;
        }
        r
    } else if n <= 128 {
        let blocked = lo + n - (n % 8);
        let mut r = [0.0f64; 8];
        for &(p, v) in within(lo, blocked) {
            r[(p - lo) % 8] += v;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &(_, v) in within(blocked, hi) {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        sparse_pairwise(entries, lo, lo + n2) + sparse_pairwise(entries, lo + n2, hi)
    }
}

/// `M @ x` for sparse rows of `M` and a dense `x`, as numpy computes it.
pub fn sparse_matvec(rows: &[Sparse], x: &[f64]) -> Vec<f64> {
    let products = |row: &Sparse| -> Vec<(usize, f64, f64)> {
        row.entries
            .iter()
            .filter(|&&(p, _)| x[p] != 0.0)
            .map(|&(p, a)| (p, a, x[p]))
            .collect()
    };
    if rows.len() == 1 {
        return vec![ddot_terms(x.len(), products(&rows[0]).into_iter())];
    }
    let m = x.len();
    let m1 = m & !3;
    let m3 = m & 3;
    let n = rows.len();
    let n4 = n & !3;
    rows.iter()
        .enumerate()
        .map(|(j, row)| {
            let terms = products(row);
            let mut y = 0.0;
            if m1 > 0 {
                let body = terms.iter().filter(|t| t.0 < m1);
                y = if j < n4 {
                    let mut acc = [0.0f64; 4];
                    for &(p, a, b) in body {
                        acc[p % 4] = fma(a, b, acc[p % 4]);
                    }
                    (acc[0] + acc[2]) + (acc[1] + acc[3])
                } else if j < n4 + (n & 2) {
                    let mut acc = [0.0f64; 2];
                    for &(p, a, b) in body {
                        acc[p % 2] += a * b;
                    }
                    acc[0] + acc[1]
                } else {
                    let mut first = [0.0f64; 2];
                    let mut second = [0.0f64; 2];
                    for &(p, a, b) in body {
                        if p % 4 < 2 {
                            first[p % 4] += a * b;
                        } else {
                            second[p % 4 - 2] += a * b;
                        }
                    }
                    (first[0] + second[0]) + (first[1] + second[1])
                };
            }
            let b = m1;
            let a = |i: usize| row.get(i);
            match m3 {
                3 => y + fma(a(b + 2), x[b + 2], fma(a(b), x[b], a(b + 1) * x[b + 1])),
                2 => y + fma(a(b), x[b], a(b + 1) * x[b + 1]),
                1 => fma(a(b), x[b], y),
                _ => y,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by numpy 2.4.6 with its bundled OpenBLAS on this project's AVX-512
    /// machine kind: `np.dot`, `np.linalg.norm` and `M @ v` on inputs where the summation
    /// order shows in the last bits.
    #[test]
    fn orders_reproduce_numpy() {
        let x: Vec<f64> = (1..=20).map(|i| 1.0 / f64::from(i)).collect();
        let y: Vec<f64> = (1..=20).map(|i| f64::from(i).sqrt()).collect();
        let z: Vec<f64> = (1..=40).map(|i| 1.0 / f64::from(i)).collect();
        assert_eq!(ddot(&x, &y), 7.595255025289833);
        assert_eq!(ddot(&x[..7], &y[..7]), 4.0178834093492215);
        assert_eq!(ddot(&x, &x).sqrt(), 1.2633935427700362);
        assert_eq!(ddot(&z, &z).sqrt(), 1.2728880402482126);
        let reversed: Vec<f64> = z.iter().rev().copied().collect();
        assert_eq!(ddot(&z, &reversed), 0.2087094165334818);
        let rows = vec![x[..7].to_vec(), y[..7].to_vec(), x[3..10].to_vec()];
        assert_eq!(
            matvec(&rows, &y[10..17]),
            [9.216218795054527, 51.31084217148085, 3.9983021423007186]
        );
        let rows5 = vec![
            x[..9].to_vec(),
            y[..9].to_vec(),
            x[3..12].to_vec(),
            y[2..11].to_vec(),
            x[5..14].to_vec(),
        ];
        assert_eq!(
            matvec(&rows5, &y[11..20]),
            [
                10.617384378956391,
                78.80381339917298,
                4.915357011086672,
                94.65381261836224,
                3.773587055060218
            ]
        );
        let norms: Vec<f64> = rows5.iter().map(|row| row_norm(row)).collect();
        assert_eq!(
            norms,
            [
                1.240873777290237,
                6.708203932499369,
                0.451514703315176,
                7.937253933193772,
                0.3352383150677015
            ]
        );
    }

    fn sparse_of(dense: &[f64]) -> Sparse {
        Sparse {
            len: dense.len(),
            entries: dense
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(i, v)| (i, *v))
                .collect(),
        }
    }

    fn mostly_zero() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![3 => Just(0.0f64), 1 => 0.001f64..10.0]
    }

    proptest::proptest! {
        #[test]
        fn sparse_forms_equal_the_dense_kernels(
            rows in proptest::collection::vec(proptest::collection::vec(mostly_zero(), 0..300), 1..9),
            x_seed in proptest::collection::vec(mostly_zero(), 0..300),
        ) {
            let d = rows.iter().map(Vec::len).min().unwrap_or(0).min(x_seed.len());
            let rows: Vec<Vec<f64>> = rows.iter().map(|r| r[..d].to_vec()).collect();
            let x = &x_seed[..d];
            let sparse_rows: Vec<Sparse> = rows.iter().map(|r| sparse_of(r)).collect();
            let dense = matvec(&rows, x);
            let sparse = sparse_matvec(&sparse_rows, x);
            for (a, b) in dense.iter().zip(&sparse) {
                proptest::prop_assert_eq!(a.to_bits(), b.to_bits());
            }
            for (row, sparse_row) in rows.iter().zip(&sparse_rows) {
                proptest::prop_assert_eq!(row_norm(row).to_bits(), sparse_row_norm(sparse_row).to_bits());
                proptest::prop_assert_eq!(ddot(row, row).to_bits(), sparse_self_dot(sparse_row).to_bits());
            }
        }
    }
}
