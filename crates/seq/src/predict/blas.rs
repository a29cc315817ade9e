//! The exact floating-point summation orders of the numpy / OpenBLAS calls KATO's metrics go
//! through, so that `itfdf_similarity` (compared bit for bit) comes out identical.
//!
//! - `np.dot(a, b)` and `np.linalg.norm(v)` (1-D): OpenBLAS `ddot`: a fused multiply-add
//!   chain below 16 elements; above, the AVX-512 kernel's lane-blocked order.
//! - `np.linalg.norm(M, axis=1)`: numpy's pairwise summation of the squared row, no FMA.
//! - `M @ v` with two or more rows: OpenBLAS `dgemv_t` (Haswell 4x4 micro-kernel and its
//!   2- and 1-column remainders).
//!
//! Each has a plainly-ordered reference in the tests; the models were checked against numpy
//! 2.2 with OpenBLAS 0.3.29 on an AVX-512 host.

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

/// `np.linalg.norm(row)` for every row of a matrix: the square root of the pairwise sum of
/// squares.
pub fn row_norm(row: &[f64]) -> f64 {
    let squares: Vec<f64> = row.iter().map(|x| x * x).collect();
    pairwise_sum(&squares).sqrt()
}

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
}
