//! The JSON of an archive: what an export writes (KnowledgeBeast 2.x's `manifest.json`,
//! `project.json` and `documents.json`) and the lenient, tree-free forms an import reads.
//!
//! Reading never builds a `serde_json::Value` of a whole entry (a tree costs many times its
//! text): strings are kept as strings, metadata is transcribed to compact JSON text as it is
//! parsed, and values of an unexpected type are skipped the way the old `Value` lookups
//! ignored them.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::projects::Project;

/// `manifest.json`.
#[derive(Serialize)]
pub(super) struct Manifest<'a> {
    pub version: &'a str,
    pub export_date: String,
    pub project_id: &'a str,
    pub project_name: &'a str,
    pub document_count: usize,
    pub has_embeddings: bool,
    pub embedding_model: &'a str,
}

/// `project.json`: the project as the API's `ProjectResponse` shows it.
#[derive(Serialize)]
pub(super) struct ProjectEntry<'a> {
    pub project_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub collection_name: String,
    pub embedding_model: &'a str,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub metadata: Value,
}

impl ProjectEntry<'_> {
    pub(super) fn of(project: &Project) -> ProjectEntry<'_> {
        ProjectEntry {
            project_id: &project.project_id,
            name: &project.name,
            description: &project.description,
            collection_name: project.collection_name(),
            embedding_model: &project.embedding_model,
            created_at: &project.created_at,
            updated_at: &project.updated_at,
            metadata: json_or_empty_object(&project.metadata),
        }
    }
}

/// `documents.json`: Chroma's column layout.
#[derive(Serialize)]
pub(super) struct DocumentsEntry<'a> {
    pub ids: &'a [String],
    pub documents: &'a [String],
    pub metadatas: &'a [Value],
    pub count: usize,
}

/// A JSON archive: the three entries of the ZIP as one document.
#[derive(Serialize)]
pub(super) struct JsonArchive<'a> {
    pub manifest: &'a Manifest<'a>,
    pub project: &'a ProjectEntry<'a>,
    pub documents: &'a DocumentsEntry<'a>,
}

/// Stored metadata text as a value (`{}` when it is not JSON).
pub(super) fn json_or_empty_object(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
}

/// Answers the visits of numbers, booleans and null with a default value (a lenient visitor).
macro_rules! scalars_as {
    ($value:ty, $default:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$value, E> {
            Ok($default)
        }
        fn visit_unit<E: de::Error>(self) -> Result<$value, E> {
            Ok($default)
        }
    };
}

/// `manifest.json` as read.
#[derive(Deserialize)]
pub(super) struct ManifestIn {
    #[serde(default)]
    pub version: LenientStr,
}

/// `project.json` as read.
#[derive(Deserialize)]
pub(super) struct ProjectIn {
    #[serde(default)]
    pub name: LenientStr,
    #[serde(default)]
    pub description: LenientStr,
    #[serde(default)]
    pub embedding_model: LenientStr,
    /// Compact JSON text of an object (anything else is dropped).
    #[serde(default)]
    pub metadata: ObjectText,
}

/// `documents.json` as read; a column that is not an array counts as empty, and so does
/// an entry that is not an object.
#[derive(Default)]
pub(super) struct DocumentsIn {
    pub ids: Column<DocId>,
    pub documents: Column<LenientStr>,
    pub metadatas: Column<DocMeta>,
}

/// A JSON archive as read.
pub(super) struct JsonArchiveIn {
    pub manifest: Option<ManifestIn>,
    pub project: Option<ProjectIn>,
    pub documents: Option<DocumentsIn>,
}

/// Reads `documents.json` (or a JSON archive, with `archive`) holding every column to
/// `max_documents` items, the bound on what the parsed form costs beyond its text: each item
/// is a few dozen bytes however short its JSON. Sets `exceeded` when a column goes past it.
#[derive(Clone, Copy)]
pub(super) struct DocumentsSeed<'a> {
    pub max_documents: u64,
    pub exceeded: &'a Cell<bool>,
}

impl DocumentsSeed<'_> {
    /// The seed of a whole JSON archive.
    pub(super) fn archive(self) -> ArchiveSeed<Self> {
        ArchiveSeed(self)
    }
}

pub(super) struct ArchiveSeed<S>(S);

/// A string, or `None` for a value of any other type.
#[derive(Debug, Default, PartialEq)]
pub(super) struct LenientStr(pub Option<String>);

/// A document id: the string, or the JSON text of another value.
#[derive(Debug, PartialEq)]
pub(super) struct DocId(pub String);

/// A document's metadata: its compact JSON text and the fields an import reads from it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct DocMeta {
    pub text: String,
    pub path: Option<String>,
    pub kb_dir: Option<String>,
    pub name: Option<String>,
}

/// The compact JSON text of an object, or `None` for a value of any other type.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ObjectText(pub Option<String>);

/// The items of an array, or none for a value of any other type.
#[derive(Debug, PartialEq)]
pub(super) struct Column<T>(pub Vec<T>);

impl<T> Default for Column<T> {
    fn default() -> Self {
        Column(Vec::new())
    }
}

impl<'de> Deserialize<'de> for LenientStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = LenientStr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as!(LenientStr, LenientStr(None));

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LenientStr, E> {
        Ok(LenientStr(Some(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<LenientStr, E> {
        Ok(LenientStr(Some(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<LenientStr, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| LenientStr(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LenientStr, A::Error> {
        IgnoredAny.visit_map(map).map(|_| LenientStr(None))
    }
}

impl<'de> Deserialize<'de> for DocId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = String::new();
        let string = Compact::new(&mut text, None).deserialize(deserializer)?;
        Ok(DocId(string.unwrap_or(text)))
    }
}

impl<'de> Deserialize<'de> for DocMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut meta = DocMeta::default();
        let mut text = String::new();
        Compact::new(&mut text, Some(&mut meta)).deserialize(deserializer)?;
        meta.text = text;
        Ok(meta)
    }
}

impl<'de> Deserialize<'de> for ObjectText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut text = String::new();
        Compact::new(&mut text, None).deserialize(deserializer)?;
        Ok(ObjectText(text.starts_with('{').then_some(text)))
    }
}

/// A column, at most `max_documents` items.
struct ColumnSeed<'a, T> {
    bound: DocumentsSeed<'a>,
    item: std::marker::PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ColumnSeed<'_, T> {
    type Value = Column<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Column<T>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ColumnSeed<'_, T> {
    type Value = Column<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as!(Column<T>, Column::default());

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Column<T>, E> {
        Ok(Column::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Column<T>, A::Error> {
        // No capacity from the input: its size hint is not to be trusted.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.len() as u64 == self.bound.max_documents {
                self.bound.exceeded.set(true);
                return Err(de::Error::custom("too many documents"));
            }
            items.push(item);
        }
        Ok(Column(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Column<T>, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Column::default())
    }
}

impl<'de> DeserializeSeed<'de> for DocumentsSeed<'_> {
    type Value = DocumentsIn;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<DocumentsIn, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentsSeed<'_> {
    type Value = DocumentsIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars_as!(DocumentsIn, DocumentsIn::default());

    fn visit_str<E: de::Error>(self, _: &str) -> Result<DocumentsIn, E> {
        Ok(DocumentsIn::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DocumentsIn, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| DocumentsIn::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DocumentsIn, A::Error> {
        let mut out = DocumentsIn::default();
        // A repeated key counts with its last value, as in a `Value`.
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "ids" => out.ids = map.next_value_seed(self.column())?,
                "documents" => out.documents = map.next_value_seed(self.column())?,
                "metadatas" => out.metadatas = map.next_value_seed(self.column())?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

impl<'a> DocumentsSeed<'a> {
    fn column<T>(self) -> ColumnSeed<'a, T> {
        ColumnSeed {
            bound: self,
            item: std::marker::PhantomData,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ArchiveSeed<DocumentsSeed<'_>> {
    type Value = JsonArchiveIn;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonArchiveIn, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ArchiveSeed<DocumentsSeed<'_>> {
    type Value = JsonArchiveIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON archive (an object with manifest, project and documents)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonArchiveIn, A::Error> {
        let mut out = JsonArchiveIn {
            manifest: None,
            project: None,
            documents: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "manifest" => out.manifest = map.next_value()?,
                "project" => out.project = map.next_value()?,
                "documents" => out.documents = Some(map.next_value_seed(self.0)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// Appends the value it reads to `out` as compact JSON text, exactly as serde_json prints a
/// `Value` (same escapes, number forms and key order), without building one. Hands back the
/// string when the value is one; with `fields`, also picks the fields of a metadata object.
struct Compact<'a> {
    out: &'a mut String,
    fields: Option<&'a mut DocMeta>,
    keep_string: bool,
}

impl<'a> Compact<'a> {
    fn new(out: &'a mut String, fields: Option<&'a mut DocMeta>) -> Compact<'a> {
        Compact {
            out,
            fields,
            keep_string: true,
        }
    }

    fn nested(out: &mut String, keep_string: bool) -> Compact<'_> {
        Compact {
            out,
            fields: None,
            keep_string,
        }
    }
}

fn push_json<E: de::Error>(out: &mut String, value: &impl Serialize) -> Result<(), E> {
    out.push_str(&serde_json::to_string(value).map_err(E::custom)?);
    Ok(())
}

impl<'de> DeserializeSeed<'de> for Compact<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Compact<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<String>, E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<String>, E> {
        let _ = write!(self.out, "{v}");
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<String>, E> {
        let _ = write!(self.out, "{v}");
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<String>, E> {
        push_json(self.out, &v)?;
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
        push_json(self.out, &v)?;
        Ok(self.keep_string.then(|| v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        self.out.push_str("null");
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            if seq
                .next_element_seed(Compact::nested(self.out, false))?
                .is_none()
            {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut fields = self.fields;
        self.out.push('{');
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if !first {
                self.out.push(',');
            }
            first = false;
            push_json(self.out, &key)?;
            self.out.push(':');
            let field = match (fields.as_deref_mut(), key.as_str()) {
                (Some(meta), "path") => Some(&mut meta.path),
                (Some(meta), "kb_dir") => Some(&mut meta.kb_dir),
                (Some(meta), "name") => Some(&mut meta.name),
                _ => None,
            };
            let string = map.next_value_seed(Compact::nested(self.out, field.is_some()))?;
            // A repeated key counts with its last value, as in a `Value`.
            if let Some(field) = field {
                *field = string;
            }
        }
        self.out.push('}');
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_text_is_what_a_value_prints() {
        for text in [
            r#"{"b": [1, -2, 3.5, 1e300, true, null, "x\"\u00e9\n"], "a": {"c": {}}, "d": []}"#,
            r#"  "plain" "#,
            "12345678901234567890",
            "-0.0",
            r#"[{"k": "v"}, [], [[]], 0.1]"#,
        ] {
            let expected = serde_json::from_str::<Value>(text).unwrap().to_string();
            let mut out = String::new();
            Compact::new(&mut out, None)
                .deserialize(&mut serde_json::Deserializer::from_str(text))
                .unwrap();
            assert_eq!(out, expected, "{text}");
        }
    }

    fn documents(text: &str) -> DocumentsIn {
        let exceeded = Cell::new(false);
        let seed = DocumentsSeed {
            max_documents: 10,
            exceeded: &exceeded,
        };
        seed.deserialize(&mut serde_json::Deserializer::from_str(text))
            .unwrap()
    }

    #[test]
    fn documents_are_read_leniently() {
        let docs = documents(
            r#"{"ids": ["a", 7, {"x": 1}], "documents": ["one", 2, ["x"]],
                "metadatas": [{"path": "p.py", "name": 3, "kb_dir": "k", "z": [1]}, null],
                "count": 3}"#,
        );
        let ids: Vec<&str> = docs.ids.0.iter().map(|id| id.0.as_str()).collect();
        assert_eq!(ids, ["a", "7", r#"{"x":1}"#]);
        assert_eq!(
            docs.documents.0,
            [
                LenientStr(Some("one".into())),
                LenientStr(None),
                LenientStr(None)
            ]
        );
        assert_eq!(
            docs.metadatas.0,
            [
                DocMeta {
                    text: r#"{"path":"p.py","name":3,"kb_dir":"k","z":[1]}"#.into(),
                    path: Some("p.py".into()),
                    kb_dir: Some("k".into()),
                    name: None,
                },
                DocMeta {
                    text: "null".into(),
                    ..DocMeta::default()
                },
            ]
        );
        for odd in [r#"{"ids": {"a": 1}, "documents": "x"}"#, "[1, 2]", "null"] {
            let odd = documents(odd);
            assert!(odd.ids.0.is_empty() && odd.documents.0.is_empty());
            assert!(odd.metadatas.0.is_empty());
        }
        assert_eq!(
            documents(r#"{"ids": ["a"], "ids": ["b", "c"]}"#)
                .ids
                .0
                .len(),
            2
        );
    }

    #[test]
    fn project_metadata_must_be_an_object() {
        let project: ProjectIn =
            serde_json::from_str(r#"{"name": 1, "metadata": {"team": "x", "n": [1, 2]}}"#).unwrap();
        assert_eq!(project.name, LenientStr(None));
        assert_eq!(
            project.metadata,
            ObjectText(Some(r#"{"team":"x","n":[1,2]}"#.into()))
        );
        let project: ProjectIn = serde_json::from_str(r#"{"metadata": [1]}"#).unwrap();
        assert_eq!(project.metadata, ObjectText(None));
    }
}
