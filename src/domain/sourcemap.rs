//! Source maps: which release files may map a minified frame, and where a frame is in the
//! original source. The maps are read with `sourcemap` (Sentry's own crate); a minified source
//! uploaded beside its map lets the enclosing function's original name be found.

use std::collections::HashMap;

use sourcemap::{DecodedMap, SourceView};

use crate::{domain::Frame, error::Error};

/// Most bytes one release file may hold.
pub const FILE_MAX: usize = 20 * 1024 * 1024;
/// Most bytes one chunk of an artifact bundle may hold (sentry-cli is told to cut 8 MiB).
pub const CHUNK_MAX: usize = 8 * 1024 * 1024;
/// Longest file name, in characters.
pub const NAME_MAX: usize = 500;
/// Longest context line shown, in characters.
const CONTEXT_MAX: usize = 300;

/// The SHA-1 of `bytes`, in lowercase hex (how release files and chunks are named).
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(<sha1::Sha1 as sha1::Digest>::digest(bytes))
}

/// Checks an upload: a name, a release, contents within [`FILE_MAX`]; a name ending in `.map`
/// must hold a source map.
pub fn check_upload(release: &str, name: &str, content: &[u8]) -> Result<(), Error> {
    if release.trim().is_empty() {
        return Err(Error::required("release"));
    }
    check_file(name, content, name.ends_with(".map"))
}

/// Checks a file's name and size; `is_map`: it must hold a source map.
fn check_file(name: &str, content: &[u8], is_map: bool) -> Result<(), Error> {
    let name_len = name.chars().count();
    if name.trim().is_empty() {
        return Err(Error::required("name"));
    }
    if name_len > NAME_MAX || name.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "name",
            format!("must be at most {NAME_MAX} characters, without control characters"),
            "INVALID_NAME",
        ));
    }
    if content.is_empty() || content.len() > FILE_MAX {
        return Err(Error::invalid_field(
            "content",
            format!("must hold from 1 byte to {} MiB", FILE_MAX / 1024 / 1024),
            "INVALID_SIZE",
        ));
    }
    if is_map && let Err(e) = sourcemap::decode_slice(content) {
        return Err(Error::invalid_field(
            "content",
            format!("is not a source map: {e}"),
            "INVALID_SOURCEMAP",
        ));
    }
    Ok(())
}

/// The names a minified file's map may be stored under, as Sentry names release artifacts:
/// the URL with `.map` added, and `~` followed by the URL's path (`~/static/app.min.js.map`).
/// Empty for a frame with no file.
pub fn map_names(filename: &str) -> Vec<String> {
    let file = filename.split(['?', '#']).next().unwrap_or_default();
    if file.is_empty() {
        return Vec::new();
    }
    let mut names = vec![format!("{file}.map")];
    if let Some((_, rest)) = file.split_once("://") {
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        names.push(format!("~{path}.map"));
    } else if file.starts_with('/') {
        names.push(format!("~{file}.map"));
    }
    names
}

/// A frame as its source map places it in the original source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub filename: String,
    pub lineno: u32,
    pub colno: u32,
    /// The enclosing function's original name, when the minified source was there to find it.
    pub function: Option<String>,
    pub context_line: Option<String>,
    /// Whether the original file belongs to the application (not `node_modules`, not webpack's
    /// runtime).
    pub in_app: bool,
}

impl Original {
    /// The frame `sent` placed here, keeping `sent` in its `minified`. The original function
    /// name when it was found, else the minified one. The module is left out, as Sentry derives
    /// it again from the original path: the sent one names the minified bundle, which changes
    /// from build to build, and the file identifies the frame now.
    pub fn frame(self, sent: Frame) -> Frame {
        Frame {
            filename: self.filename,
            function: self.function.unwrap_or_else(|| sent.function.clone()),
            module: String::new(),
            lineno: self.lineno,
            colno: self.colno,
            in_app: Some(self.in_app),
            context_line: self.context_line.unwrap_or_default(),
            minified: Some(Box::new(sent)),
        }
    }
}

/// Where minified position `lineno`:`colno` (1-based) is in the original source, by `map`;
/// `minified` (the minified file) and `function` (its name there) give the original function
/// name. `None` when the map has no source for the position.
pub fn original(
    map: &DecodedMap,
    minified: Option<&SourceView>,
    function: &str,
    lineno: u32,
    colno: u32,
) -> Option<Original> {
    if lineno == 0 {
        return None;
    }
    let token = map.lookup_token(lineno - 1, colno.saturating_sub(1))?;
    let source = token.get_source()?;
    let context_line = token.get_source_view().and_then(|v| {
        v.get_line(token.get_src_line())
            .map(|l| l.trim_end().chars().take(CONTEXT_MAX).collect::<String>())
    });
    let function = minified
        .zip(Some(function).filter(|f| !f.is_empty()))
        .and_then(|(view, name)| view.get_original_function_name(token, name))
        .map(str::to_owned);
    let in_app = !(source.contains("/node_modules/") || source.starts_with("webpack/"));
    Some(Original {
        filename: source.to_owned(),
        lineno: token.get_src_line() + 1,
        colno: token.get_src_col() + 1,
        function,
        context_line,
        in_app,
    })
}

/// Most files one artifact bundle may hold.
const BUNDLE_FILES_MAX: usize = 10_000;
/// Most bytes the files of one artifact bundle may unpack to.
const BUNDLE_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// What a debug id's file is: the map, or the minified source it maps.
pub const SOURCE_MAP: &str = "source_map";
pub const MINIFIED_SOURCE: &str = "minified_source";

/// A file of an artifact bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Its URL (`~/static/app.min.js.map`).
    pub url: String,
    pub content: Vec<u8>,
    /// The debug id `sentry-cli sourcemaps inject` gave it (lowercase, hyphenated), if any.
    pub debug_id: Option<String>,
    /// [`SOURCE_MAP`], [`MINIFIED_SOURCE`] or another type the bundle names.
    pub kind: String,
}

impl BundleFile {
    /// The debug id to keep the file under: a map's or a minified source's, when it has one.
    pub fn kept_by_debug_id(&self) -> Option<&str> {
        self.debug_id
            .as_deref()
            .filter(|_| self.kind == SOURCE_MAP || self.kind == MINIFIED_SOURCE)
    }
}

/// A debug id as SDKs and sentry-cli write it, in the form it is stored under (lowercase,
/// hyphenated); `None` when it is not one.
pub fn debug_id(raw: &str) -> Option<String> {
    uuid::Uuid::try_parse(raw.trim())
        .ok()
        .map(|id| id.hyphenated().to_string())
}

/// The files of an artifact bundle, as sentry-cli builds one: a zip whose `manifest.json`
/// lists each file's path in the zip, its `url` (`~/static/app.min.js.map`), its `type` and,
/// once injected, its `debug-id` header. Files beyond [`FILE_MAX`] are refused, and so is a
/// bundle that unpacks beyond a bound (a zip bomb).
pub fn unpack_bundle(zip: &[u8]) -> Result<Vec<BundleFile>, String> {
    use std::io::Read;

    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        files: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        url: String,
        #[serde(default, rename = "type")]
        kind: String,
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
    }

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    let mut read = |name: &str, budget: &mut u64| -> Result<Vec<u8>, String> {
        let file = archive.by_name(name).map_err(|e| format!("{name}: {e}"))?;
        let cap = (*budget).min(FILE_MAX as u64 + 1);
        let mut out = Vec::new();
        file.take(cap)
            .read_to_end(&mut out)
            .map_err(|e| format!("{name}: {e}"))?;
        if out.len() as u64 > FILE_MAX as u64 {
            return Err(format!("{name}: larger than {} MiB", FILE_MAX >> 20));
        }
        if out.len() as u64 >= *budget {
            return Err(format!(
                "unpacks to more than {} MiB",
                BUNDLE_BYTES_MAX >> 20
            ));
        }
        *budget -= out.len() as u64;
        Ok(out)
    };
    let mut budget = BUNDLE_BYTES_MAX;
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json", &mut budget)?)
        .map_err(|e| format!("manifest.json: {e}"))?;
    if manifest.files.len() > BUNDLE_FILES_MAX {
        return Err(format!("more than {BUNDLE_FILES_MAX} files"));
    }
    manifest
        .files
        .into_iter()
        .map(|(path, entry)| {
            let content = read(&path, &mut budget)?;
            let debug_id = entry
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("debug-id"))
                .and_then(|(_, v)| debug_id(v));
            let kind = if !entry.kind.is_empty() {
                entry.kind
            } else if entry.url.ends_with(".map") {
                SOURCE_MAP.to_owned()
            } else {
                MINIFIED_SOURCE.to_owned()
            };
            Ok(BundleFile {
                url: entry.url,
                content,
                debug_id,
                kind,
            })
        })
        .collect()
}

/// What putting an artifact bundle together came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembly {
    /// These chunks are not stored yet.
    Missing(Vec<String>),
    /// The bundle's files, checked as uploads.
    Files(Vec<BundleFile>),
}

/// Chunk SHA-1s as sentry-cli sends them, in the form they are stored under (lowercase hex).
pub fn checksums(raw: &[String]) -> Vec<String> {
    raw.iter().map(|c| c.trim().to_ascii_lowercase()).collect()
}

/// Puts an artifact bundle of `release` (empty: none) together from the `stored` chunks (by
/// SHA-1) in the order `chunks` gives, checks that it adds up to `checksum`, unpacks it and
/// checks each file as an upload. Without a release each map must carry a debug id. `Err`
/// says why the bundle cannot be used. CPU work in proportion to the bundle.
pub fn assemble(
    release: &str,
    checksum: &str,
    chunks: &[String],
    stored: &HashMap<String, Vec<u8>>,
) -> Result<Assembly, String> {
    let missing: Vec<String> = chunks
        .iter()
        .filter(|c| !stored.contains_key(*c))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Ok(Assembly::Missing(missing));
    }
    let bundle: Vec<u8> = chunks
        .iter()
        .flat_map(|c| stored[c].iter().copied())
        .collect();
    let (whole, checksum) = (sha1_hex(&bundle), checksum.trim().to_ascii_lowercase());
    if whole != checksum {
        return Err(format!(
            "the chunks add up to SHA-1 {whole}, not {checksum}"
        ));
    }
    let files =
        unpack_bundle(&bundle).map_err(|why| format!("the bundle cannot be read: {why}"))?;
    let release = release.trim();
    for f in &files {
        let is_map = f.url.ends_with(".map") || f.kind == SOURCE_MAP;
        if release.is_empty() && is_map && f.debug_id.is_none() {
            return Err(format!(
                "{}: a source map without a debug id needs a release: run `sentry-cli \
                 sourcemaps inject` on the build first, or upload with --release <version>",
                f.url
            ));
        }
        check_file(&f.url, &f.content, is_map).map_err(|e| format!("{}: {e}", f.url))?;
    }
    Ok(Assembly::Files(files))
}

#[cfg(test)]
pub(crate) mod tests {
    use sourcemap::SourceMapBuilder;

    use super::*;

    /// `function add(a,b){return a+b}` minified onto one line as `function n(r,t){return r+t}`.
    fn map() -> (DecodedMap, &'static str) {
        let (bytes, minified) = map_bytes();
        (sourcemap::decode_slice(&bytes).unwrap(), minified)
    }

    /// A map of `webpack://shop/src/math.ts` and the minified file it maps.
    pub(crate) fn map_bytes() -> (Vec<u8>, &'static str) {
        let minified = "function n(r,t){return r+t}n(1,2);";
        let mut b = SourceMapBuilder::new(Some("app.min.js"));
        let src = b.add_source("webpack://shop/src/math.ts");
        b.set_source_contents(
            src,
            Some("// math\nexport function add(a, b) {\n  return a + b;\n}\n"),
        );
        b.add(0, 0, 1, 7, Some("webpack://shop/src/math.ts"), None, false);
        b.add(
            0,
            9,
            1,
            16,
            Some("webpack://shop/src/math.ts"),
            Some("add"),
            false,
        );
        b.add(0, 16, 2, 2, Some("webpack://shop/src/math.ts"), None, false);
        let mut out = Vec::new();
        b.into_sourcemap().to_writer(&mut out).unwrap();
        (out, minified)
    }

    #[test]
    fn a_minified_position_maps_to_its_original_line() {
        let (map, minified) = map();
        let view = SourceView::from_string(minified.to_owned());
        let o = original(&map, Some(&view), "n", 1, 18).unwrap();
        assert_eq!(o.filename, "webpack://shop/src/math.ts");
        assert_eq!((o.lineno, o.colno), (3, 3));
        assert_eq!(o.context_line.as_deref(), Some("  return a + b;"));
        assert_eq!(o.function.as_deref(), Some("add"));
        assert!(o.in_app);
        // Without the minified source the function keeps its minified name.
        assert_eq!(original(&map, None, "n", 1, 18).unwrap().function, None);
        assert_eq!(original(&map, None, "n", 0, 18), None);
    }

    #[test]
    fn maps_are_named_after_the_url_or_its_path() {
        assert_eq!(
            map_names("https://shop.example/static/app.min.js?v=3"),
            [
                "https://shop.example/static/app.min.js.map",
                "~/static/app.min.js.map"
            ]
        );
        assert_eq!(
            map_names("/static/app.js"),
            ["/static/app.js.map", "~/static/app.js.map"]
        );
        assert_eq!(map_names("app.js"), ["app.js.map"]);
        assert!(map_names("").is_empty());
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, content) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, content).unwrap();
        }
        w.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn bundles_unpack_by_their_manifest() {
        let manifest = br#"{"files": {"files/_/_/app.min.js.map": {"url": "~/static/app.min.js.map", "type": "source_map"}}, "org": "o"}"#;
        let zip = zip_of(&[
            ("manifest.json", manifest),
            ("files/_/_/app.min.js.map", b"{\"version\":3}"),
        ]);
        assert_eq!(
            unpack_bundle(&zip).unwrap(),
            [BundleFile {
                url: "~/static/app.min.js.map".to_owned(),
                content: b"{\"version\":3}".to_vec(),
                debug_id: None,
                kind: SOURCE_MAP.into(),
            }]
        );
        // Injected: each file names its debug id (read in any case, stored lowercase).
        let injected = br#"{"files": {"a": {"url": "~/a.js", "headers": {"Debug-Id": "FF4B10CB-CAF0-5E8E-9389-6CD0DC7D74FF"}}, "b": {"url": "~/a.js.map", "headers": {"debug-id": "not an id"}}}}"#;
        let zip = zip_of(&[("manifest.json", injected), ("a", b"x"), ("b", b"{}")]);
        let files = unpack_bundle(&zip).unwrap();
        assert_eq!(
            files
                .iter()
                .map(|f| (f.kind.as_str(), f.debug_id.as_deref()))
                .collect::<Vec<_>>(),
            [
                (
                    MINIFIED_SOURCE,
                    Some("ff4b10cb-caf0-5e8e-9389-6cd0dc7d74ff")
                ),
                (SOURCE_MAP, None)
            ]
        );
        assert!(unpack_bundle(b"not a zip").unwrap_err().contains("zip"));
        let missing = zip_of(&[("manifest.json", manifest)]);
        assert!(
            unpack_bundle(&missing)
                .unwrap_err()
                .contains("app.min.js.map")
        );
        let no_manifest = zip_of(&[("files/a", b"x")]);
        assert!(
            unpack_bundle(&no_manifest)
                .unwrap_err()
                .contains("manifest.json")
        );
    }

    #[test]
    fn uploads_are_checked() {
        let ok = br#"{"version":3,"sources":[],"names":[],"mappings":""}"#;
        assert!(check_upload("shop@1", "~/app.js.map", ok).is_ok());
        assert!(check_upload("shop@1", "~/app.js", b"function n(){}").is_ok());
        for (release, name, content, code) in [
            ("", "~/a.map", &ok[..], "REQUIRED"),
            ("r", " ", &ok[..], "REQUIRED"),
            ("r", "~/a.map", &b""[..], "INVALID_SIZE"),
            ("r", "~/a.map", &b"not json"[..], "INVALID_SOURCEMAP"),
            ("r", "a\nb", &ok[..], "INVALID_NAME"),
        ] {
            let e = check_upload(release, name, content).unwrap_err();
            assert!(format!("{e:?}").contains(code), "{name:?}: {e:?}");
        }
    }
}
