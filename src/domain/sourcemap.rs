//! Source maps: which release files may map a minified frame, and where a frame is in the
//! original source. The maps are read with `sourcemap` (Sentry's own crate); a minified source
//! uploaded beside its map lets the enclosing function's original name be found.

use sourcemap::{DecodedMap, SourceView};

use crate::error::Error;

/// Most bytes one release file may hold.
pub const FILE_MAX: usize = 20 * 1024 * 1024;
/// Longest file name, in characters.
pub const NAME_MAX: usize = 500;
/// Longest context line shown, in characters.
const CONTEXT_MAX: usize = 300;

/// Checks an upload: a name, a release, contents within [`FILE_MAX`]; a name ending in `.map`
/// must hold a source map.
pub fn check_upload(release: &str, name: &str, content: &[u8]) -> Result<(), Error> {
    if release.trim().is_empty() {
        return Err(Error::required("release"));
    }
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
    if name.ends_with(".map")
        && let Err(e) = sourcemap::decode_slice(content)
    {
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

#[cfg(test)]
mod tests {
    use sourcemap::SourceMapBuilder;

    use super::*;

    /// `function add(a,b){return a+b}` minified onto one line as `function n(r,t){return r+t}`.
    fn map() -> (DecodedMap, &'static str) {
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
        (sourcemap::decode_slice(&out).unwrap(), minified)
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
