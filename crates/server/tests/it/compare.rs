//! The conformance README's comparison rules (a port of its `kato_golden.py` helpers).

use serde_json::Value;

const TOLERANT: &[&str] = &[
    "global_normalized_entropy",
    "tfidf_score",
    "bayesian_posterior",
    "aggregate_potential",
    "predictive_information",
    "total_weighted_frequency",
];
const RELATIVE_TOLERANCE: f64 = 1e-12;

/// Replaces substrings in every string value and key (real session ids -> placeholders).
pub fn substitute(value: &mut Value, subs: &[(String, String)]) {
    match value {
        Value::String(s) => {
            for (old, new) in subs {
                if s.contains(old.as_str()) {
                    *s = s.replace(old.as_str(), new);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, subs)),
        Value::Object(map) => {
            let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
            for (mut k, mut v) in entries {
                for (old, new) in subs {
                    k = k.replace(old.as_str(), new);
                }
                substitute(&mut v, subs);
                map.insert(k, v);
            }
        }
        _ => {}
    }
}

fn template(method: &str, path: &str) -> String {
    let path = path
        .split('?')
        .next()
        .unwrap_or(path)
        .replace("{sid2}", "{sid}");
    format!("{method} {path}")
}

fn drop_keys(value: &mut Value, keys: &[String]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| drop_keys(v, keys)),
        Value::Object(map) => {
            map.retain(|k, _| !keys.contains(k));
            map.values_mut().for_each(|v| drop_keys(v, keys));
        }
        _ => {}
    }
}

/// Splits `items` into runs of equal `key` and sorts each run by `id` (JSON text); drops the
/// last run when asked. Returns the canonical list and the runs.
fn canon_groups(
    items: &[Value],
    key: &str,
    id: &str,
    drop_last: bool,
) -> (Vec<Value>, Vec<Vec<Value>>) {
    let mut runs: Vec<Vec<Value>> = Vec::new();
    for item in items {
        match runs.last_mut() {
            Some(run) if num_eq(&run[run.len() - 1][key], &item[key]) => run.push(item.clone()),
            _ => runs.push(vec![item.clone()]),
        }
    }
    let keep = if drop_last && !runs.is_empty() {
        &runs[..runs.len() - 1]
    } else {
        &runs[..]
    };
    let mut out = Vec::new();
    for run in keep {
        let mut run = run.clone();
        run.sort_by_key(|v| serde_json::to_string(&v[id]).unwrap_or_default());
        out.extend(run);
    }
    (out, runs)
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn cmp(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 20 {
        return;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x_float, y_float) = (x.is_f64(), y.is_f64());
            if x_float != y_float {
                out.push(format!("{path}: type recorded {a} replayed {b}"));
                return;
            }
            if x_float {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                if x == y {
                    return;
                }
                let field = path
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .split('[')
                    .next()
                    .unwrap_or("");
                if TOLERANT.contains(&field)
                    && (x - y).abs() <= RELATIVE_TOLERANCE * x.abs().max(y.abs())
                {
                    return;
                }
                out.push(format!("{path}: recorded {x:?} replayed {y:?}"));
            } else if x != y {
                out.push(format!("{path}: recorded {a} replayed {b}"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().filter(|k| !y.contains_key(*k)) {
                out.push(format!("{path}.{k}: missing in replay"));
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected in replay"));
            }
            for (k, v) in x {
                if let Some(w) = y.get(k) {
                    cmp(v, w, &format!("{path}.{k}"), out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!(
                    "{path}: length recorded {} replayed {}",
                    x.len(),
                    y.len()
                ));
                return;
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                cmp(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if std::mem::discriminant(a) != std::mem::discriminant(b) => {
            out.push(format!("{path}: type recorded {a} replayed {b}"));
        }
        _ if a != b => out.push(format!("{path}: recorded {a} replayed {b}")),
        _ => {}
    }
}

/// The mismatches between a recorded step and the replayed status and response.
pub fn step(step: &Value, status: u16, response: Value, volatile: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    if step["status"].as_u64() != Some(u64::from(status)) {
        out.push(format!(
            "status: recorded {} replayed {status} ({response})",
            step["status"]
        ));
        return out;
    }
    let method = step["method"].as_str().unwrap_or("");
    let tpl = template(method, step["path"].as_str().unwrap_or(""));
    let keys: Vec<String> = volatile
        .iter()
        .filter(|v| {
            v["scope"] == "*"
                || v["scope"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == tpl.as_str()))
        })
        .filter_map(|v| v["key"].as_str().map(str::to_owned))
        .collect();
    let mut recorded = step["response"].clone();
    let mut replayed = response;
    drop_keys(&mut recorded, &keys);
    drop_keys(&mut replayed, &keys);
    if step
        .get("nondeterministic")
        .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
    {
        cmp(&recorded["count"], &replayed["count"], "$.count", &mut out);
        return out;
    }
    let boundary = step.get("boundary").filter(|b| !b.is_null());
    if recorded.get("cognition_data").is_some_and(Value::is_object)
        && replayed.get("cognition_data").is_some_and(Value::is_object)
    {
        canonicalise(
            &mut recorded["cognition_data"],
            &mut replayed["cognition_data"],
            boundary,
            &mut out,
        );
    } else {
        canonicalise(&mut recorded, &mut replayed, boundary, &mut out);
    }
    cmp(&recorded, &replayed, "$", &mut out);
    out
}

/// Sorts each run of tied predictions (future potentials) by name (future), checking the
/// `boundary` annotation on the last run.
fn canonicalise(
    recorded: &mut Value,
    replayed: &mut Value,
    boundary: Option<&Value>,
    out: &mut Vec<String>,
) {
    if let (Some(rp), Some(pp)) = (
        recorded["predictions"].as_array().cloned(),
        replayed["predictions"].as_array().cloned(),
    ) {
        let (rec_canon, rec_runs) = canon_groups(&rp, "potential", "name", boundary.is_some());
        let (rep_canon, rep_runs) = canon_groups(&pp, "potential", "name", boundary.is_some());
        if let Some(b) = boundary {
            check_boundary(b, &rec_runs, &rep_runs, out);
        }
        recorded["predictions"] = Value::Array(rec_canon);
        replayed["predictions"] = Value::Array(rep_canon);
    }
    if let (Some(rf), Some(pf)) = (
        recorded["future_potentials"].as_array().cloned(),
        replayed["future_potentials"].as_array().cloned(),
    ) {
        recorded["future_potentials"] =
            Value::Array(canon_groups(&rf, "aggregate_potential", "future", false).0);
        replayed["future_potentials"] =
            Value::Array(canon_groups(&pf, "aggregate_potential", "future", false).0);
    }
}

fn check_boundary(
    boundary: &Value,
    rec_runs: &[Vec<Value>],
    rep_runs: &[Vec<Value>],
    out: &mut Vec<String>,
) {
    let Some(last_rep) = rep_runs.last() else {
        out.push("boundary: replay has no predictions".into());
        return;
    };
    let last_rec = rec_runs.last().cloned().unwrap_or_default();
    if last_rep.len() != last_rec.len() {
        out.push(format!(
            "boundary group: size recorded {} replayed {}",
            last_rec.len(),
            last_rep.len()
        ));
        return;
    }
    let allowed: Vec<&Value> = boundary["allowed"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for p in last_rep {
        if !num_eq(&p["potential"], &boundary["key"]) {
            out.push(format!(
                "boundary group: potential {} != {}",
                p["potential"], boundary["key"]
            ));
        }
        if !allowed.contains(&&p["name"]) {
            out.push(format!(
                "boundary group: name {} not among the tied candidates",
                p["name"]
            ));
        }
    }
}
