//! Vector and hybrid search over the API with the real all-MiniLM-L6-v2 model: mode, alpha
//! and fusion in /api/v1/query, /query/paginated and the project API, the defaults with and
//! without a model, and the errors.

use crate::support;

use mneme_app::EmbeddingModel;
use mneme_embed::test_model_dir as model_dir;
use serde_json::{Value, json};
use support::TestServer;

fn docs() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "audio.md",
            "# Librosa\n\nA Python package for music and audio analysis: beat tracking, tempo estimation and onset detection.\n",
        ),
        (
            "cooking.md",
            "# Sourdough\n\nMix flour, water and salt, let the dough rise overnight and bake it in a hot oven.\n",
        ),
        (
            "finance.md",
            "# Quarterly report\n\nRevenue grew by twelve percent while operating costs stayed flat.\n",
        ),
    ]
}

fn with_model() -> TestServer {
    TestServer::with(&docs(), |setup| {
        setup.kb.embedding_model = EmbeddingModel::Folder(model_dir());
    })
}

fn query(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/api/v1/query", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

fn doc_ids(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn meaning_finds_documents_that_share_no_word_with_the_query() {
    let server = with_model();
    // No word of the query occurs in any document.
    let answer = query(
        &server,
        json!({"query": "baking bread at home", "mode": "vector"}),
    );
    assert_eq!(answer["metadata"]["mode"], "vector");
    assert_eq!(doc_ids(&answer)[0], "knowledge-base/cooking.md", "{answer}");
    let answer = query(
        &server,
        json!({"query": "songs and rhythm", "mode": "vector", "limit": 1}),
    );
    assert_eq!(doc_ids(&answer), ["knowledge-base/audio.md"]);
    // Keyword mode finds nothing for it.
    let answer = query(&server, json!({"query": "songs rhythm", "mode": "keyword"}));
    assert_eq!(answer["count"], 0, "{answer}");
}

#[test]
fn hybrid_is_the_default_with_a_model_and_alpha_moves_it() {
    let server = with_model();
    let answer = query(&server, json!({"query": "revenue of the bakery"}));
    assert_eq!(answer["metadata"]["mode"], "hybrid");
    // All keyword: the only document with "revenue" leads.
    let keyword = query(
        &server,
        json!({"query": "revenue of the bakery", "mode": "hybrid", "alpha": 0.0}),
    );
    assert_eq!(doc_ids(&keyword)[0], "knowledge-base/finance.md");
    // All vector: the answer is the vector ranking.
    let vector = query(
        &server,
        json!({"query": "revenue of the bakery", "mode": "vector"}),
    );
    let all_vector = query(
        &server,
        json!({"query": "revenue of the bakery", "mode": "hybrid", "alpha": 1.0}),
    );
    assert_eq!(doc_ids(&all_vector), doc_ids(&vector));
    // Reciprocal-rank fusion.
    let rrf = query(
        &server,
        json!({"query": "revenue of the bakery", "mode": "hybrid", "fusion": "rrf"}),
    );
    assert_eq!(rrf["count"], 3);
    let top = rrf["results"][0]["doc_id"].clone();
    assert!(
        top == "knowledge-base/finance.md" || top == "knowledge-base/cooking.md",
        "{rrf}"
    );
    // Paginated hybrid agrees with the plain query.
    let page = server.post(
        "/api/v1/query/paginated",
        &json!({"query": "revenue of the bakery", "page": 2, "page_size": 1}),
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(
        page["results"][0]["doc_id"], answer["results"][1]["doc_id"],
        "{page}"
    );
    // Stats report the vectors and the query-embedding cache.
    let stats = server.get("/api/v1/stats").json();
    assert_eq!(stats["vectors"], 3, "{stats}");
    assert_eq!(
        stats["embedding_model"], "all-MiniLM-L6-v2",
        "the model's name, as KnowledgeBeast reports it: {stats}"
    );
    assert!(
        stats["query_embedding_cache_hits"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

#[test]
fn bad_mode_alpha_or_fusion_is_a_422() {
    let server = with_model();
    for (body, field) in [
        (json!({"query": "x", "alpha": 1.5}), "body.alpha"),
        (json!({"query": "x", "alpha": -0.1}), "body.alpha"),
        (json!({"query": "x", "alpha": "much"}), "body.alpha"),
        (json!({"query": "x", "fusion": "average"}), "body.fusion"),
        (json!({"query": "x", "mode": "semantic-ish"}), "body.mode"),
    ] {
        let reply = server.post("/api/v1/query", &body);
        assert_eq!(reply.status, 422, "{body}: {}", reply.text());
        let detail = reply.json()["detail"].to_string();
        assert!(detail.contains(field), "{body}: {detail}");
    }
}

#[test]
fn without_a_model_hybrid_is_keyword_and_vector_says_how_to_get_one() {
    let server = TestServer::with(&docs(), |setup| {
        setup.kb.embedding_model = EmbeddingModel::Off;
    });
    let answer = query(&server, json!({"query": "revenue"}));
    assert_eq!(answer["metadata"]["mode"], "keyword");
    let answer = query(&server, json!({"query": "revenue", "mode": "hybrid"}));
    assert_eq!(answer["metadata"]["mode"], "keyword");
    let reply = server.post(
        "/api/v1/query",
        &json!({"query": "revenue", "mode": "vector"}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("KB_EMBEDDING_MODEL"),
        "{}",
        reply.text()
    );
}

#[test]
fn project_queries_take_the_same_modes() {
    let server = with_model();
    let project = server.post("/api/v2/projects", &json!({"name": "kitchen"}));
    assert_eq!(project.status, 201, "{}", project.text());
    let id = project.json()["project_id"].as_str().unwrap().to_owned();
    for (name, text) in docs() {
        let reply = server.post(
            &format!("/api/v2/projects/{id}/ingest"),
            &json!({"content": text, "metadata": {"name": name}}),
        );
        assert!(
            reply.status == 200 || reply.status == 201,
            "{}",
            reply.text()
        );
    }
    let reply = server.post(
        &format!("/api/v2/projects/{id}/query"),
        &json!({"query": "baking bread at home", "mode": "vector", "limit": 1}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    let first = &answer["results"][0];
    assert!(first.to_string().contains("Sourdough"), "{answer}");
}
