//! The node-kind tables of C, C++, Java, C#, Ruby, PHP, Kotlin, Swift, Bash and Lua, and the few shapes a table entry cannot say (a C declarator, a Ruby
//! `attr_reader`, a PHP `define()` …). Which nodes count as definitions follows the
//! definition kinds of Universal Ctags for each language (the recall bench's
//! reference), in the language's own words.

use tree_sitter::{Language, Node};

use super::{F, Found, Kind, Lang, Rule, Rules, k, kind_of, named, push, push_named, text};

const fn by(kind: Kind, field: &'static str) -> Rule {
    Rule::NamedBy { kind, field }
}

const fn first(kind: Kind, child: &'static str) -> Rule {
    Rule::FirstChild { kind, child }
}

/// What a C/C++ declaration-like node may define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CDeclaration {
    /// `int f(void) { … }` / `void A::f() { … }`.
    FunctionDefinition,
    /// `int x = 1;` at file or namespace level (prototypes and `extern` are not
    /// definitions).
    Declaration,
    /// `typedef struct s t;`.
    Typedef,
    /// A struct/class member: a field, or a method declared in the class.
    Field,
}

/// Shapes specific to one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    /// `NAME = …` (a constant) in a Ruby class, module or file.
    RubyConstant,
    /// `attr_reader :a, :b` / `attr_accessor` / `attr_writer`.
    RubyAccessor,
    /// `alias new old` / `alias_method :new, :old`.
    RubyAlias,
    /// `define('NAME', …)`.
    PhpDefine,
    /// `$name = …` at the top of a PHP file.
    PhpGlobal,
    /// `private $name;` (named without the `$`).
    PhpProperty,
    /// `x.y = function () … end`.
    LuaAssignedFunction,
    /// `{ name = function () … end }`.
    LuaFieldFunction,
    /// `class`, `interface`, `enum class`, `fun interface`.
    KotlinClass,
    /// `val`/`var`, one per name of a destructuring declaration.
    KotlinProperty,
    /// `companion object` (named `Companion` unless it has a name).
    KotlinCompanion,
    /// `constructor(…)`.
    KotlinConstructor,
    /// `class A(val x: Int)`: a property declared in the primary constructor.
    KotlinClassParameter,
    /// `class`, `struct`, `enum`, `actor`; an `extension` only contains.
    SwiftType,
    /// `init(…)`.
    SwiftInit,
    /// `let`/`var`, every name of the pattern.
    SwiftProperty,
    /// `case a, b(Int)`.
    SwiftEnumCase,
    /// `function a.b.c()` / `function a:m()` / `local function f()`.
    LuaFunction,
    /// `alias name=value`.
    BashAlias,
}

use CDeclaration as C;
use Special as S;

const C_RULES: Rules = &[
    (
        "function_definition",
        Rule::CDeclaration(C::FunctionDefinition),
    ),
    ("declaration", Rule::CDeclaration(C::Declaration)),
    ("type_definition", Rule::CDeclaration(C::Typedef)),
    ("field_declaration", Rule::CDeclaration(C::Field)),
    ("struct_specifier", Rule::CSpecifier(k("struct", F::Struct))),
    ("union_specifier", Rule::CSpecifier(k("union", F::Struct))),
    ("enum_specifier", Rule::CSpecifier(k("enum", F::Enum))),
    ("enumerator", named(k("enumerator", F::Constant))),
];

/// C++: the C rules plus these.
const CPP_RULES: Rules = &[
    ("class_specifier", Rule::CSpecifier(k("class", F::Class))),
    (
        "namespace_definition",
        by(k("namespace", F::Namespace), "name"),
    ),
    ("alias_declaration", named(k("using", F::Type))),
    ("concept_definition", named(k("concept", F::Type))),
];

const JAVA_RULES: Rules = &[
    ("class_declaration", named(k("class", F::Class))),
    ("record_declaration", named(k("record", F::Class))),
    ("interface_declaration", named(k("interface", F::Interface))),
    (
        "annotation_type_declaration",
        named(k("annotation", F::Interface)),
    ),
    ("enum_declaration", named(k("enum", F::Enum))),
    ("enum_constant", named(k("enum constant", F::Constant))),
    ("method_declaration", named(k("method", F::Method))),
    (
        "annotation_type_element_declaration",
        named(k("method", F::Method)),
    ),
    (
        "constructor_declaration",
        named(k("constructor", F::Constructor)),
    ),
    (
        "compact_constructor_declaration",
        named(k("constructor", F::Constructor)),
    ),
    ("field_declaration", Rule::Declarators(k("field", F::Field))),
    (
        "constant_declaration",
        Rule::Declarators(k("constant", F::Constant)),
    ),
];

const CSHARP_RULES: Rules = &[
    ("class_declaration", named(k("class", F::Class))),
    ("record_declaration", named(k("record", F::Class))),
    ("struct_declaration", named(k("struct", F::Struct))),
    ("interface_declaration", named(k("interface", F::Interface))),
    ("enum_declaration", named(k("enum", F::Enum))),
    (
        "enum_member_declaration",
        named(k("enum member", F::Constant)),
    ),
    ("delegate_declaration", named(k("delegate", F::Type))),
    ("method_declaration", named(k("method", F::Method))),
    (
        "constructor_declaration",
        named(k("constructor", F::Constructor)),
    ),
    ("destructor_declaration", named(k("destructor", F::Method))),
    ("property_declaration", named(k("property", F::Field))),
    ("event_declaration", named(k("event", F::Field))),
    ("field_declaration", Rule::Declarators(k("field", F::Field))),
    (
        "event_field_declaration",
        Rule::Declarators(k("event", F::Field)),
    ),
    (
        "namespace_declaration",
        by(k("namespace", F::Namespace), "name"),
    ),
    (
        "file_scoped_namespace_declaration",
        by(k("namespace", F::Namespace), "name"),
    ),
];

const RUBY_RULES: Rules = &[
    ("class", by(k("class", F::Class), "name")),
    ("module", by(k("module", F::Module), "name")),
    ("method", named(k("def", F::Method))),
    ("singleton_method", named(k("singleton method", F::Method))),
    ("assignment", Rule::Special(S::RubyConstant)),
    ("call", Rule::Special(S::RubyAccessor)),
    ("alias", Rule::Special(S::RubyAlias)),
];

const PHP_RULES: Rules = &[
    ("class_declaration", named(k("class", F::Class))),
    ("interface_declaration", named(k("interface", F::Interface))),
    ("trait_declaration", named(k("trait", F::Interface))),
    ("enum_declaration", named(k("enum", F::Enum))),
    ("enum_case", named(k("case", F::Constant))),
    ("function_definition", named(k("function", F::Function))),
    ("method_declaration", named(k("method", F::Method))),
    (
        "namespace_definition",
        by(k("namespace", F::Namespace), "name"),
    ),
    ("const_element", first(k("const", F::Constant), "name")),
    ("property_element", Rule::Special(S::PhpProperty)),
    ("function_call_expression", Rule::Special(S::PhpDefine)),
    ("assignment_expression", Rule::Special(S::PhpGlobal)),
];

const KOTLIN_RULES: Rules = &[
    ("class_declaration", Rule::Special(S::KotlinClass)),
    ("object_declaration", named(k("object", F::Class))),
    ("companion_object", Rule::Special(S::KotlinCompanion)),
    ("function_declaration", named(k("fun", F::Function))),
    ("secondary_constructor", Rule::Special(S::KotlinConstructor)),
    ("property_declaration", Rule::Special(S::KotlinProperty)),
    ("type_alias", by(k("typealias", F::Type), "type")),
    (
        "enum_entry",
        first(k("enum entry", F::Constant), "identifier"),
    ),
    ("class_parameter", Rule::Special(S::KotlinClassParameter)),
];

const SWIFT_RULES: Rules = &[
    ("class_declaration", Rule::Special(S::SwiftType)),
    ("protocol_declaration", named(k("protocol", F::Interface))),
    ("function_declaration", named(k("func", F::Function))),
    ("protocol_function_declaration", named(k("func", F::Method))),
    ("init_declaration", Rule::Special(S::SwiftInit)),
    ("property_declaration", Rule::Special(S::SwiftProperty)),
    (
        "protocol_property_declaration",
        Rule::Special(S::SwiftProperty),
    ),
    ("enum_entry", Rule::Special(S::SwiftEnumCase)),
    ("typealias_declaration", named(k("typealias", F::Type))),
    (
        "associatedtype_declaration",
        named(k("associatedtype", F::Type)),
    ),
];

const LUA_RULES: Rules = &[
    ("function_declaration", Rule::Special(S::LuaFunction)),
    (
        "assignment_statement",
        Rule::Special(S::LuaAssignedFunction),
    ),
    ("field", Rule::Special(S::LuaFieldFunction)),
];

const BASH_RULES: Rules = &[
    ("function_definition", named(k("function", F::Function))),
    ("command", Rule::Special(S::BashAlias)),
];

pub(super) fn grammar(lang: Lang) -> Option<(Language, Vec<Rules>)> {
    Some(match lang {
        Lang::C => (tree_sitter_c::LANGUAGE.into(), vec![C_RULES]),
        Lang::Cpp => (tree_sitter_cpp::LANGUAGE.into(), vec![C_RULES, CPP_RULES]),
        Lang::Java => (tree_sitter_java::LANGUAGE.into(), vec![JAVA_RULES]),
        Lang::CSharp => (tree_sitter_c_sharp::LANGUAGE.into(), vec![CSHARP_RULES]),
        Lang::Ruby => (tree_sitter_ruby::LANGUAGE.into(), vec![RUBY_RULES]),
        Lang::Php => (tree_sitter_php::LANGUAGE_PHP.into(), vec![PHP_RULES]),
        Lang::Kotlin => (tree_sitter_kotlin_ng::LANGUAGE.into(), vec![KOTLIN_RULES]),
        Lang::Swift => (tree_sitter_swift::LANGUAGE.into(), vec![SWIFT_RULES]),
        Lang::Lua => (tree_sitter_lua::LANGUAGE.into(), vec![LUA_RULES]),
        Lang::Shell => (tree_sitter_bash::LANGUAGE.into(), vec![BASH_RULES]),
        _ => return None,
    })
}

/// The last part of a possibly qualified name: `B` of `A::B`, `A.B` or `A\B`; the
/// node itself when it is not qualified. Namespaces keep their full name.
pub(super) fn last_name_part(node: Node<'_>) -> Option<Node<'_>> {
    match node.kind() {
        "qualified_identifier" | "scope_resolution" | "template_type" => {
            node.child_by_field_name("name").and_then(last_name_part)
        }
        _ => Some(node),
    }
}

/// Java `int a, b;` and C# `int a, b;` (inside a `variable_declaration`).
pub(super) fn declarators(node: Node<'_>, kind: Kind, source: &[u8], found: &mut Vec<Found>) {
    let mut cursor = node.walk();
    let holder = node
        .named_children(&mut cursor)
        .find(|c| c.kind() == "variable_declaration")
        .unwrap_or(node);
    let mut cursor = holder.walk();
    for declarator in holder.named_children(&mut cursor) {
        if declarator.kind() == "variable_declarator"
            && let Some(name) = declarator.child_by_field_name("name")
        {
            push(found, node, name, Some(kind), None, source);
        }
    }
}

/// The name a C/C++ declarator declares, whether it declares a function, and the
/// scope of a qualified name (`A` of `A::f`). Pointers, arrays, references,
/// parentheses and initialisers are looked through; `int (*fp)(void)` is a variable
/// (the declarator nearest the name is the pointer), `int *f(void)` a function.
fn c_declarator(mut node: Node<'_>) -> Option<(Node<'_>, bool, Option<Node<'_>>)> {
    let mut function = false;
    let mut scope = None;
    // Declarators nest once per `*`, `[]` or `()`: bounded by the source, and a loop,
    // not recursion, so deep nesting cannot overflow the stack.
    loop {
        match node.kind() {
            "identifier" | "field_identifier" | "type_identifier" | "primitive_type"
            | "destructor_name" | "operator_name" | "operator_cast" => {
                return Some((node, function, scope));
            }
            "qualified_identifier" => {
                scope = node.child_by_field_name("scope");
                node = node.child_by_field_name("name")?;
            }
            "template_function" => node = node.child_by_field_name("name")?,
            "function_declarator" => {
                function = true;
                node = node.child_by_field_name("declarator")?;
            }
            "pointer_declarator" | "array_declarator" | "pointer_type_declarator" => {
                function = false;
                node = node.child_by_field_name("declarator")?;
            }
            "init_declarator" | "attributed_declarator" => {
                node = node.child_by_field_name("declarator")?;
            }
            "reference_declarator" | "parenthesized_declarator" => {
                let mut cursor = node.walk();
                node = node.named_children(&mut cursor).find(|c| {
                    !c.kind().ends_with("_qualifier") && c.kind() != "ms_call_modifier"
                })?;
            }
            _ => return None,
        }
    }
}

fn has_storage_class(node: Node<'_>, class: &str, source: &[u8]) -> bool {
    let mut cursor = node.walk();
    node.children(&mut cursor).any(|c| {
        c.kind() == "storage_class_specifier" && &source[c.byte_range()] == class.as_bytes()
    })
}

pub(super) fn c_declaration(
    what: CDeclaration,
    node: Node<'_>,
    source: &[u8],
    found: &mut Vec<Found>,
) {
    let mut cursor = node.walk();
    let declarators: Vec<Node<'_>> = node
        .children_by_field_name("declarator", &mut cursor)
        .collect();
    for declarator in declarators {
        let Some((name, function, scope)) = c_declarator(declarator) else {
            continue;
        };
        let kind = match (what, function) {
            (C::FunctionDefinition, _) if scope.is_some() => k("function", F::Method),
            (C::FunctionDefinition, _) => k("function", F::Function),
            // C++ declares constructors and destructors in a class as declarations.
            (C::Declaration, true) if kind_of(node.parent()) == "field_declaration_list" => {
                k("method", F::Method)
            }
            // A prototype: in a header, where an API is declared.
            (C::Declaration, true) => k("prototype", F::Function),
            (C::Declaration, false) if has_storage_class(node, "extern", source) => continue,
            (C::Declaration, false) => k("variable", F::Variable),
            (C::Typedef, _) => k("typedef", F::Type),
            (C::Field, true) => k("method", F::Method),
            (C::Field, false) => k("member", F::Field),
        };
        // `A::f` is defined in A, wherever the definition stands.
        let container = scope.and_then(last_name_part).map(|s| text(s, source));
        push(found, node, name, Some(kind), container, source);
    }
}

/// `#define NAME` lines of C and C++, found by reading lines rather than the syntax
/// tree: a preprocessor line stands on its own, while tree-sitter, which parses C
/// and C++ as if the preprocessor were part of them, loses whole regions of
/// macro-heavy code to error recovery (ctags reads them as lines too). A line
/// continuing the previous one (after a `\`) is not a directive.
pub(super) fn c_macros(source: &[u8], found: &mut Vec<Found>) {
    let mut start = 0;
    let mut row = 0u32;
    let mut continued = false;
    while start < source.len() {
        let end = memchr::memchr(b'\n', &source[start..]).map_or(source.len(), |i| start + i);
        let line = &source[start..end];
        if !continued && let Some(name) = define_name(line) {
            let name_start = start + name.start;
            found.push(Found {
                name: String::from_utf8_lossy(&line[name.clone()]).into_owned(),
                kind: Some(k("macro", F::Macro)),
                name_start,
                // The line alone: a macro contains nothing.
                start: name_start,
                end: start + name.end,
                line: row + 1,
                column: name.start as u32 + 1,
                end_line: row + 1,
                container: None,
            });
        }
        continued = line.trim_ascii_end().ends_with(b"\\");
        start = end + 1;
        row += 1;
    }
}

/// The byte range of NAME in `# define NAME…`.
fn define_name(line: &[u8]) -> Option<std::ops::Range<usize>> {
    let skip_blanks = |from: usize| {
        from + line[from..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    let hash = skip_blanks(0);
    if line.get(hash) != Some(&b'#') {
        return None;
    }
    let directive = skip_blanks(hash + 1);
    let rest = line[directive..].strip_prefix(b"define")?;
    let name_start = directive + b"define".len();
    if !rest.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
        return None;
    }
    let name_start = skip_blanks(name_start);
    let name_len = line[name_start..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    (name_len > 0 && !line[name_start].is_ascii_digit()).then(|| name_start..name_start + name_len)
}

pub(super) fn special(what: Special, node: Node<'_>, source: &[u8], found: &mut Vec<Found>) {
    let field = |name: &str| node.child_by_field_name(name);
    let children = || {
        let mut cursor = node.walk();
        node.named_children(&mut cursor).collect::<Vec<_>>()
    };
    match what {
        S::RubyConstant => {
            let scope = node.parent().map(|p| p.kind());
            let in_scope = matches!(scope, Some("program" | "body_statement"));
            if let Some(left) = field("left")
                && left.kind() == "constant"
                && in_scope
            {
                push(
                    found,
                    node,
                    left,
                    Some(k("constant", F::Constant)),
                    None,
                    source,
                );
            }
        }
        S::RubyAccessor => {
            let method = field("method").map(|m| &source[m.byte_range()]);
            if method == Some(b"alias_method".as_slice()) {
                let new_name = field("arguments").and_then(|a| a.named_child(0));
                if let Some(new_name) = new_name.filter(|n| n.kind() == "simple_symbol") {
                    let name = text(new_name, source).trim_start_matches(':').to_string();
                    push_named(
                        found,
                        node,
                        new_name,
                        name,
                        Some(k("alias", F::Method)),
                        None,
                    );
                }
                return;
            }
            let accessor = matches!(
                method,
                Some(b"attr_reader" | b"attr_writer" | b"attr_accessor" | b"attr")
            );
            // A writer defines `name=`; an accessor both `name` and `name=`.
            let (reader, writer) = match method {
                Some(b"attr_writer") => (false, true),
                Some(b"attr_accessor") => (true, true),
                _ => (true, false),
            };
            if let Some(arguments) = field("arguments")
                && accessor
                && field("receiver").is_none()
            {
                let mut cursor = arguments.walk();
                for argument in arguments.named_children(&mut cursor) {
                    if argument.kind() == "simple_symbol" {
                        let name = text(argument, source).trim_start_matches(':').to_string();
                        let kind = Some(k("attr", F::Field));
                        if writer {
                            push_named(found, node, argument, format!("{name}="), kind, None);
                        }
                        if reader {
                            push_named(found, node, argument, name, kind, None);
                        }
                    }
                }
            }
        }
        S::RubyAlias => {
            if let Some(name) = field("name") {
                push(found, node, name, Some(k("alias", F::Method)), None, source);
            }
        }
        S::PhpDefine => {
            let function = field("function").map(|f| &source[f.byte_range()]);
            let first_argument = field("arguments")
                .and_then(|a| a.named_child(0))
                .and_then(|a| a.named_child(0))
                .filter(|s| matches!(s.kind(), "string" | "encapsed_string"));
            if let Some(string) = first_argument
                && function.is_some_and(|f| f.eq_ignore_ascii_case(b"define"))
            {
                let mut cursor = string.walk();
                let content = string
                    .named_children(&mut cursor)
                    .find(|c| c.kind() == "string_content");
                if let Some(content) = content {
                    push(
                        found,
                        node,
                        content,
                        Some(k("define", F::Constant)),
                        None,
                        source,
                    );
                }
            }
        }
        S::PhpProperty => {
            let name = field("name").and_then(|n| n.named_child(0));
            if let Some(name) = name {
                push(
                    found,
                    node,
                    name,
                    Some(k("property", F::Field)),
                    None,
                    source,
                );
            }
        }
        S::LuaAssignedFunction => {
            let targets = children().into_iter().find(|c| c.kind() == "variable_list");
            let values = children()
                .into_iter()
                .find(|c| c.kind() == "expression_list");
            let (Some(targets), Some(values)) = (targets, values) else {
                return;
            };
            let mut cursor = targets.walk();
            let names: Vec<Node<'_>> = targets
                .children_by_field_name("name", &mut cursor)
                .collect();
            let mut cursor = values.walk();
            let values: Vec<Node<'_>> = values
                .children_by_field_name("value", &mut cursor)
                .collect();
            for (target, value) in names.into_iter().zip(values) {
                if value.kind() != "function_definition" {
                    continue;
                }
                let (name, table) = match target.kind() {
                    "dot_index_expression" => (
                        target.child_by_field_name("field"),
                        target.child_by_field_name("table"),
                    ),
                    "identifier" => (Some(target), None),
                    _ => (None, None),
                };
                if let Some(name) = name {
                    let container = table.map(|t| text(t, source));
                    push(
                        found,
                        target,
                        name,
                        Some(k("function", F::Function)),
                        container,
                        source,
                    );
                }
            }
        }
        S::LuaFieldFunction => {
            if let Some(name) = field("name")
                && name.kind() == "identifier"
                && kind_of(field("value")) == "function_definition"
            {
                push(
                    found,
                    node,
                    name,
                    Some(k("function", F::Function)),
                    None,
                    source,
                );
            }
        }
        S::PhpGlobal => {
            let statement = node.parent().filter(|p| p.kind() == "expression_statement");
            let top_level = kind_of(statement.and_then(|s| s.parent())) == "program";
            if let Some(left) = field("left")
                && top_level
                && left.kind() == "variable_name"
                && let Some(name) = left.named_child(0)
            {
                push(
                    found,
                    node,
                    name,
                    Some(k("variable", F::Variable)),
                    None,
                    source,
                );
            }
        }
        S::KotlinClass => {
            let mut cursor = node.walk();
            let is_interface = node.children(&mut cursor).any(|c| c.kind() == "interface");
            let is_enum = children().iter().any(|c| {
                c.kind() == "modifiers" && text(*c, source).split_whitespace().any(|w| w == "enum")
            });
            let kind = if is_interface {
                k("interface", F::Interface)
            } else if is_enum {
                k("enum class", F::Enum)
            } else {
                k("class", F::Class)
            };
            if let Some(name) = field("name") {
                push(found, node, name, Some(kind), None, source);
            }
        }
        S::KotlinProperty => {
            let mut cursor = node.walk();
            let is_val = node.children(&mut cursor).any(|c| c.kind() == "val");
            let is_const = children().iter().any(|c| {
                c.kind() == "modifiers" && text(*c, source).split_whitespace().any(|w| w == "const")
            });
            let kind = match (is_const, is_val) {
                (true, _) => k("const val", F::Constant),
                (false, true) => k("val", F::Variable),
                (false, false) => k("var", F::Variable),
            };
            for child in children() {
                let names = match child.kind() {
                    "variable_declaration" => vec![child],
                    "multi_variable_declaration" => {
                        let mut cursor = child.walk();
                        child.named_children(&mut cursor).collect()
                    }
                    _ => continue,
                };
                for declaration in names {
                    let mut cursor = declaration.walk();
                    let name = declaration
                        .named_children(&mut cursor)
                        .find(|c| c.kind() == "identifier");
                    if let Some(name) = name {
                        push(found, node, name, Some(kind), None, source);
                    }
                }
            }
        }
        S::KotlinCompanion => {
            let kind = Some(k("companion object", F::Class));
            match field("name") {
                Some(name) => push(found, node, name, kind, None, source),
                None => push_named(found, node, node, "Companion".into(), kind, None),
            }
        }
        S::KotlinClassParameter => {
            let mut cursor = node.walk();
            let binding = node
                .children(&mut cursor)
                .find(|c| matches!(c.kind(), "val" | "var"))
                .map(|c| c.kind());
            let name = children().into_iter().find(|c| c.kind() == "identifier");
            if let (Some(binding), Some(name)) = (binding, name) {
                let word = if binding == "val" { "val" } else { "var" };
                push(found, node, name, Some(k(word, F::Field)), None, source);
            }
        }
        S::KotlinConstructor => {
            let kind = Some(k("constructor", F::Constructor));
            push_named(found, node, node, "constructor".into(), kind, None);
        }
        S::SwiftType => {
            let declared = field("declaration_kind").map(|d| d.kind());
            let kind = match declared {
                Some("struct") => Some(k("struct", F::Struct)),
                Some("enum") => Some(k("enum", F::Enum)),
                Some("actor") => Some(k("actor", F::Class)),
                // An extension defines nothing new; its members belong to the type.
                Some("extension") => None,
                _ => Some(k("class", F::Class)),
            };
            if let Some(name) = field("name") {
                let name = last_swift_type_part(name);
                push(found, node, name, kind, None, source);
            }
        }
        S::SwiftInit => {
            let kind = Some(k("init", F::Constructor));
            let mut cursor = node.walk();
            let keyword = node.children(&mut cursor).find(|c| c.kind() == "init");
            push_named(
                found,
                node,
                keyword.unwrap_or(node),
                "init".into(),
                kind,
                None,
            );
        }
        S::SwiftProperty => {
            let mut cursor = node.walk();
            let is_let = node
                .children(&mut cursor)
                .any(|c| c.kind() == "value_binding_pattern" && text(c, source).starts_with("let"));
            let kind = if is_let {
                k("let", F::Variable)
            } else {
                k("var", F::Variable)
            };
            let mut cursor = node.walk();
            for pattern in node.children_by_field_name("name", &mut cursor) {
                let name = pattern
                    .child_by_field_name("bound_identifier")
                    .or_else(|| (pattern.kind() == "simple_identifier").then_some(pattern))
                    .or_else(|| {
                        pattern
                            .named_child(0)
                            .filter(|c| c.kind() == "simple_identifier")
                    });
                if let Some(name) = name {
                    push(found, node, name, Some(kind), None, source);
                }
            }
        }
        S::SwiftEnumCase => {
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                push(
                    found,
                    node,
                    name,
                    Some(k("case", F::Constant)),
                    None,
                    source,
                );
            }
        }
        S::LuaFunction => {
            let Some(name) = field("name") else { return };
            let (name, table, kind) = match name.kind() {
                "dot_index_expression" => (
                    name.child_by_field_name("field"),
                    name.child_by_field_name("table"),
                    k("function", F::Function),
                ),
                "method_index_expression" => (
                    name.child_by_field_name("method"),
                    name.child_by_field_name("table"),
                    k("function", F::Method),
                ),
                _ => (Some(name), None, k("function", F::Function)),
            };
            if let Some(name) = name {
                let container = table.map(|t| text(t, source));
                push(found, node, name, Some(kind), container, source);
            }
        }
        S::BashAlias => {
            let command = field("name").map(|n| &source[n.byte_range()]);
            if command != Some(b"alias".as_slice()) {
                return;
            }
            let mut cursor = node.walk();
            for argument in node.children_by_field_name("argument", &mut cursor) {
                let argument_text = &source[argument.byte_range()];
                if let Some(equals) = argument_text.iter().position(|&b| b == b'=') {
                    let name = String::from_utf8_lossy(&argument_text[..equals]).into_owned();
                    push_named(
                        found,
                        node,
                        argument,
                        name,
                        Some(k("alias", F::Function)),
                        None,
                    );
                }
            }
        }
    }
}

/// `B` of a Swift `extension A.B` / `class B`.
fn last_swift_type_part(mut node: Node<'_>) -> Node<'_> {
    while node.kind() == "user_type" || node.kind() == "nested_type_identifier" {
        match node.named_child(node.named_child_count().saturating_sub(1) as u32) {
            Some(last) => node = last,
            None => break,
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::super::SymbolExtractor;
    use super::super::tests::{extract, sym};
    use super::*;

    /// Every kind of every language, with its container: the samples below exercise
    /// each rule, and the shapes a rule must reject (locals, prototypes, `extern`,
    /// function pointers, uses of a struct without a body).
    #[test]
    fn each_language_in_its_own_words() {
        let expected = vec![
            (
                Lang::C,
                vec![
                    sym("MAX", "macro", 1, None),
                    sym("SQ", "macro", 2, None),
                    sym("point", "struct", 3, None),
                    sym("x", "member/field", 3, Some("point")),
                    sym("y", "member/field", 3, Some("point")),
                    sym("point_t", "typedef/type", 4, None),
                    sym("u", "union/struct", 5, None),
                    sym("a", "member/field", 5, Some("u")),
                    sym("b", "member/field", 5, Some("u")),
                    sym("color", "enum", 6, None),
                    sym("RED", "enumerator/constant", 6, Some("color")),
                    sym("GREEN", "enumerator/constant", 6, Some("color")),
                    sym("counter", "variable", 7, None),
                    sym("area", "prototype/function", 9, None),
                    sym("handler", "variable", 10, None),
                    sym("name", "function", 11, None),
                    sym("main", "function", 12, None),
                ],
            ),
            (
                Lang::Cpp,
                vec![
                    sym("geo", "namespace", 1, None),
                    sym("Shape", "class", 2, Some("geo")),
                    sym("Shape", "method", 4, Some("Shape")),
                    sym("~Shape", "method", 5, Some("Shape")),
                    sym("area", "method", 6, Some("Shape")),
                    sym("sides", "method", 7, Some("Shape")),
                    sym("n", "member/field", 9, Some("Shape")),
                    sym("Pt", "struct", 11, Some("geo")),
                    sym("x", "member/field", 11, Some("Pt")),
                    sym("Id", "using/type", 12, Some("geo")),
                    sym("maxv", "function", 13, Some("geo")),
                    sym("area", "function/method", 15, Some("Shape")),
                    sym("Shape", "function/method", 16, Some("Shape")),
                    sym("main", "function", 17, None),
                ],
            ),
            (
                Lang::Java,
                vec![
                    sym("Marker", "annotation/interface", 2, None),
                    sym("value", "method", 2, Some("Marker")),
                    sym("Store", "class", 3, None),
                    sym("MAX", "field", 4, Some("Store")),
                    sym("a", "field", 5, Some("Store")),
                    sym("b", "field", 5, Some("Store")),
                    sym("Store", "constructor", 6, Some("Store")),
                    sym("open", "method", 7, Some("Store")),
                    sym("Mode", "enum", 8, Some("Store")),
                    sym("READ", "enum constant/constant", 8, Some("Mode")),
                    sym("WRITE", "enum constant/constant", 8, Some("Mode")),
                    sym("Listener", "interface", 9, Some("Store")),
                    sym("on", "method", 9, Some("Listener")),
                    sym("Pair", "record/class", 10, Some("Store")),
                ],
            ),
            (
                Lang::CSharp,
                vec![
                    sym("App.Core", "namespace", 1, None),
                    sym("Store", "class", 2, Some("App.Core")),
                    sym("count", "field", 3, Some("Store")),
                    sym("size", "field", 3, Some("Store")),
                    sym("Max", "field", 4, Some("Store")),
                    sym("Name", "property/field", 5, Some("Store")),
                    sym("Changed", "event/field", 6, Some("Store")),
                    sym("Store", "constructor", 7, Some("Store")),
                    sym("Store", "destructor/method", 8, Some("Store")),
                    sym("Open", "method", 9, Some("Store")),
                    sym("IStore", "interface", 11, Some("App.Core")),
                    sym("Open", "method", 11, Some("IStore")),
                    sym("Pt", "struct", 12, Some("App.Core")),
                    sym("X", "field", 12, Some("Pt")),
                    sym("Mode", "enum", 13, Some("App.Core")),
                    sym("Read", "enum member/constant", 13, Some("Mode")),
                    sym("Write", "enum member/constant", 13, Some("Mode")),
                    sym("Handler", "delegate/type", 14, Some("App.Core")),
                    sym("Person", "record/class", 15, Some("App.Core")),
                ],
            ),
            (
                Lang::Ruby,
                vec![
                    sym("Shop", "module", 1, None),
                    sym("VERSION", "constant", 2, Some("Shop")),
                    sym("Cart", "class", 3, Some("Shop")),
                    sym("items", "attr/field", 4, Some("Cart")),
                    sym("total", "attr/field", 4, Some("Cart")),
                    sym("LIMIT", "constant", 5, Some("Cart")),
                    sym("initialize", "def/method", 6, Some("Cart")),
                    sym("build", "singleton method/method", 7, Some("Cart")),
                    sym("add", "def/method", 8, Some("Cart")),
                    sym("push", "alias/method", 11, Some("Cart")),
                    sym("Order", "class", 14, None),
                    sym("helper", "def/method", 15, None),
                ],
            ),
            (
                Lang::Php,
                vec![
                    sym("App\\Models", "namespace", 2, None),
                    sym("APP_VERSION", "define/constant", 3, None),
                    sym("LIMIT", "const/constant", 4, None),
                    sym("config", "variable", 5, None),
                    sym("Shape", "interface", 6, None),
                    sym("area", "method", 6, Some("Shape")),
                    sym("Greets", "trait/interface", 7, None),
                    sym("hi", "method", 7, Some("Greets")),
                    sym("Suit", "enum", 8, None),
                    sym("Hearts", "case/constant", 8, Some("Suit")),
                    sym("User", "class", 9, None),
                    sym("ROLE", "const/constant", 10, Some("User")),
                    sym("name", "property/field", 11, Some("User")),
                    sym("email", "property/field", 11, Some("User")),
                    sym("__construct", "method", 12, Some("User")),
                    sym("area", "method", 13, Some("User")),
                    sym("helper", "function", 15, None),
                ],
            ),
            (
                Lang::Kotlin,
                vec![
                    sym("MAX", "const val/constant", 3, None),
                    sym("top", "val/variable", 4, None),
                    sym("Id", "typealias/type", 5, None),
                    sym("Shape", "interface", 6, None),
                    sym("area", "fun/method", 7, Some("Shape")),
                    sym("Color", "enum class/enum", 9, None),
                    sym("RED", "enum entry/constant", 9, Some("Color")),
                    sym("GREEN", "enum entry/constant", 9, Some("Color")),
                    sym("Registry", "object/class", 10, None),
                    sym("get", "fun/method", 11, Some("Registry")),
                    sym("Store", "class", 13, None),
                    sym("name", "val/field", 13, Some("Store")),
                    sym("count", "var/field", 14, Some("Store")),
                    sym("constructor", "constructor", 15, Some("Store")),
                    sym("area", "fun/method", 16, Some("Store")),
                    sym("Companion", "companion object/class", 20, Some("Store")),
                    sym("create", "fun/method", 21, Some("Companion")),
                    sym("main", "fun/function", 24, None),
                ],
            ),
            (
                Lang::Swift,
                vec![
                    sym("maxCount", "let/variable", 2, None),
                    sym("Id", "typealias/type", 3, None),
                    sym("Shape", "protocol/interface", 4, None),
                    sym("area", "func/method", 4, Some("Shape")),
                    sym("sides", "var/field", 5, Some("Shape")),
                    sym("Point", "struct", 6, None),
                    sym("x", "var/field", 6, Some("Point")),
                    sym("y", "let/field", 6, Some("Point")),
                    sym("Color", "enum", 7, None),
                    sym("red", "case/constant", 7, Some("Color")),
                    sym("green", "case/constant", 7, Some("Color")),
                    sym("custom", "case/constant", 8, Some("Color")),
                    sym("Store", "class", 9, None),
                    sym("count", "var/field", 10, Some("Store")),
                    sym("init", "init/constructor", 11, Some("Store")),
                    sym("area", "func/method", 12, Some("Store")),
                    sym("extra", "func/function", 14, Some("Store")),
                    sym("Worker", "actor/class", 15, None),
                    sym("main", "func/function", 16, None),
                ],
            ),
            (
                Lang::Shell,
                vec![
                    sym("ll", "alias/function", 2, None),
                    sym("greet", "function", 4, None),
                    sym("build", "function", 5, None),
                ],
            ),
            (
                Lang::Lua,
                vec![
                    sym("new", "function", 2, Some("M")),
                    sym("method", "function/method", 3, Some("M")),
                    sym("helper", "function", 4, None),
                    sym("global", "function", 5, None),
                    sym("c", "function", 6, Some("a.b")),
                ],
            ),
        ];
        assert_eq!(expected.len(), SAMPLES.len());
        for ((lang, source), (expected_lang, symbols)) in SAMPLES.iter().zip(expected) {
            assert_eq!(*lang, expected_lang);
            assert_eq!(extract(*lang, source), symbols, "{lang}");
        }
    }

    #[test]
    fn c_macros_are_read_as_lines_even_where_the_parse_fails() {
        // `ASSERT_LOCKED()` after a declarator and the unbalanced `#if` arms send
        // tree-sitter into error recovery; the directives are still lines.
        let source = "#define A 1\n  #  define B(x) \\\n    #define NOT_A_MACRO\n#if X\nvoid f() ASSERT_LOCKED() {\n#else\nvoid f() {\n#endif\n#define C\n}\n#define 9bad\n#undef A\n";
        for lang in [Lang::C, Lang::Cpp] {
            let macros: Vec<_> = extract(lang, source)
                .into_iter()
                .filter(|s| s.1 == "macro")
                .map(|s| (s.0, s.2))
                .collect();
            let expected = [("A", 1), ("B", 2), ("C", 9)].map(|(n, l)| (n.to_string(), l));
            assert_eq!(macros, expected, "{lang}");
        }
    }

    #[test]
    fn ruby_accessors_define_readers_and_writers_and_lua_table_fields_functions() {
        let ruby = "class A\n  attr_accessor :size\n  attr_writer :name\n  alias_method :length, :size\nend\n";
        assert_eq!(
            extract(Lang::Ruby, ruby),
            vec![
                sym("A", "class", 1, None),
                sym("size=", "attr/field", 2, Some("A")),
                sym("size", "attr/field", 2, Some("A")),
                sym("name=", "attr/field", 3, Some("A")),
                sym("length", "alias/method", 4, Some("A")),
            ]
        );
        let lua = "local mt = { __index = function (t, k) end, n = 1 }\nmt.__gc = function () end\nlocal x = f(function () end)\n";
        assert_eq!(
            extract(Lang::Lua, lua),
            vec![
                sym("__index", "function", 1, None),
                sym("__gc", "function", 2, Some("mt")),
            ]
        );
    }

    /// A snippet per language that defines a function `NAME`, for the hostile-input
    /// tests.
    fn template(lang: Lang) -> &'static str {
        match lang {
            Lang::Rust => "fn NAME() {}\n",
            Lang::Python => "def NAME(): pass\n",
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx | Lang::Php => "function NAME() {}\n",
            Lang::Go => "func NAME() {}\n",
            Lang::C | Lang::Cpp => "int NAME(void) { return 0; }\n",
            Lang::Java | Lang::CSharp => "class A { void NAME() {} }\n",
            Lang::Ruby => "def NAME; end\n",
            Lang::Kotlin => "fun NAME() {}\n",
            Lang::Swift => "func NAME() {}\n",
            Lang::Shell => "NAME() { :; }\n",
            Lang::Lua => "function NAME() end\n",
            _ => "",
        }
    }

    fn defines(lang: Lang, name: &str) -> String {
        template(lang).replace("NAME", name)
    }

    /// What a file must start with for its first definition to be code (PHP outside
    /// `<?php` is HTML).
    fn prelude(lang: Lang) -> &'static str {
        if lang == Lang::Php { "<?php\n" } else { "" }
    }

    fn line_comment(lang: Lang) -> &'static str {
        match lang {
            Lang::Python | Lang::Ruby | Lang::Shell | Lang::Php => "#",
            Lang::Lua => "--",
            _ => "//",
        }
    }

    fn symbol_languages() -> impl Iterator<Item = Lang> {
        Lang::ALL.into_iter().filter(|l| l.has_symbols())
    }

    /// Runs `f` on a thread with the stack a scan worker has (the default 2 MiB), so a
    /// recursion that deep input would overflow fails the test instead of passing on
    /// the main thread's larger stack.
    fn on_worker_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn_scoped(scope, f)
                .unwrap()
                .join()
                .unwrap()
        })
    }

    #[test]
    fn ten_thousand_levels_of_nesting_parse_without_overflowing_the_stack() {
        for lang in symbol_languages() {
            // Brackets in an expression and blocks in a body: what every grammar nests.
            let depth = 10_000;
            let nested = format!(
                "{}{}{}x = {}1{}\n{}{}",
                prelude(lang),
                defines(lang, "f"),
                "{".repeat(depth),
                "(".repeat(depth),
                ")".repeat(depth),
                "}".repeat(depth),
                defines(lang, "g"),
            );
            let symbols =
                on_worker_stack(|| SymbolExtractor::new().extract(lang, nested.as_bytes()));
            assert!(
                symbols.iter().any(|s| s.name == "f"),
                "{lang}: the definition before the nesting is lost: {symbols:?}"
            );
        }
    }

    #[test]
    fn a_two_megabyte_minified_file_is_parsed_on_one_line() {
        for lang in symbol_languages() {
            // Just under the 2 MiB a file may have to be read at all.
            let snippet = defines(lang, "f").trim_end().replace('\n', " ");
            let line = format!("{snippet}; ");
            let copies = 2_000_000 / line.len();
            let minified = format!("{}{}", prelude(lang).trim_end(), line.repeat(copies));
            let symbols =
                on_worker_stack(|| SymbolExtractor::new().extract(lang, minified.as_bytes()));
            assert!(
                symbols.iter().all(|s| s.line == 1),
                "{lang}: a one-line file has symbols on other lines"
            );
            // Every copy is found where the language allows statements on one line
            // (Python's `def` and Swift's and Kotlin's declarations need newlines, and
            // error recovery keeps only some: no count is promised there, only no panic).
            if matches!(
                lang,
                Lang::C | Lang::Cpp | Lang::JavaScript | Lang::Rust | Lang::Go | Lang::Java
            ) {
                assert!(
                    symbols.len() >= copies,
                    "{lang}: {} of {copies}",
                    symbols.len()
                );
            }
        }
    }

    #[test]
    fn a_file_in_another_language_or_invalid_utf8_yields_what_parses() {
        let python =
            "import os\n\nclass Repo:\n    def sync(self):\n        return {'a': [1, 2]}\n";
        let garbage: Vec<u8> = (0..65_536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for lang in symbol_languages() {
            // Python in a file named for another language: parsed as that language.
            SymbolExtractor::new().extract(lang, python.as_bytes());
            SymbolExtractor::new().extract(lang, &garbage);
            // A name holding invalid UTF-8: whatever parses, and no panic.
            let (before, after) = template(lang).split_once("NAME").unwrap();
            let mut source = prelude(lang).as_bytes().to_vec();
            source.extend_from_slice(before.as_bytes());
            source.extend_from_slice(b"f\xff\xfe");
            source.extend_from_slice(after.as_bytes());
            SymbolExtractor::new().extract(lang, &source);
            // Invalid UTF-8 in a comment: the definitions around it are all found.
            let mut source = prelude(lang).as_bytes().to_vec();
            source.extend_from_slice(defines(lang, "g").as_bytes());
            source.extend_from_slice(line_comment(lang).as_bytes());
            source.extend_from_slice(b" caf\xe9 \xff\xfe\n");
            source.extend_from_slice(defines(lang, "h").as_bytes());
            let names: Vec<String> = SymbolExtractor::new()
                .extract(lang, &source)
                .into_iter()
                .map(|s| s.name)
                .collect();
            assert!(
                names.contains(&"g".into()) && names.contains(&"h".into()),
                "{lang}: a definition next to invalid UTF-8 is lost: {names:?}"
            );
        }
    }

    pub(super) const SAMPLES: &[(Lang, &str)] = &[
        (
            Lang::C,
            "#define MAX 3\n#define SQ(x) ((x)*(x))\nstruct point { int x, y; };\ntypedef struct point point_t;\nunion u { int a; float b; };\nenum color { RED, GREEN = 2 };\nstatic int counter = 0;\nextern int shared;\nint area(struct point *p);\nint (*handler)(int);\nstatic char *name(void) { int local = 1; return 0; }\nint main(int argc, char **argv) { struct point q; return 0; }\n",
        ),
        (
            Lang::Cpp,
            "namespace geo {\nclass Shape {\npublic:\n  Shape();\n  virtual ~Shape();\n  virtual double area() const = 0;\n  int sides() const { return n; }\nprivate:\n  int n;\n};\nstruct Pt { int x; };\nusing Id = int;\ntemplate <typename T> T maxv(T a, T b) { return a; }\n}\ndouble geo::Shape::area() const { return 0; }\ngeo::Shape::Shape() {}\nint main() { return 0; }\n",
        ),
        (
            Lang::Java,
            "package a.b;\n@interface Marker { String value(); }\npublic class Store<T> {\n  public static final int MAX = 3;\n  private int a, b;\n  public Store() {}\n  public void open() { int local = 1; }\n  enum Mode { READ, WRITE; }\n  interface Listener { void on(); }\n  record Pair(int x, int y) {}\n}\n",
        ),
        (
            Lang::CSharp,
            "namespace App.Core {\n  public class Store : IStore {\n    private int count, size;\n    public const int Max = 3;\n    public string Name { get; set; }\n    public event EventHandler Changed;\n    public Store() {}\n    ~Store() {}\n    public void Open() { var local = 1; }\n  }\n  public interface IStore { void Open(); }\n  public struct Pt { public int X; }\n  public enum Mode { Read, Write }\n  public delegate void Handler(int x);\n  public record Person(string Name);\n}\n",
        ),
        (
            Lang::Ruby,
            "module Shop\n  VERSION = '1.0'\n  class Cart < Base\n    attr_reader :items, :total\n    LIMIT = 10\n    def initialize; @items = []; end\n    def self.build; new; end\n    def add(item)\n      x = 1\n    end\n    alias push add\n  end\nend\nclass Shop::Order; end\ndef helper; end\n",
        ),
        (
            Lang::Php,
            "<?php\nnamespace App\\Models;\ndefine('APP_VERSION', '1.0');\nconst LIMIT = 10;\n$config = [];\ninterface Shape { public function area(); }\ntrait Greets { public function hi() {} }\nenum Suit { case Hearts; }\nclass User extends Model implements Shape {\n  const ROLE = 'user';\n  private $name, $email;\n  public function __construct() { $local = 1; }\n  public function area() { return 0; }\n}\nfunction helper() {}\n",
        ),
        (
            Lang::Kotlin,
            "package app\n\nconst val MAX = 3\nval top = 1\ntypealias Id = String\ninterface Shape {\n  fun area(): Double\n}\nenum class Color { RED, GREEN }\nobject Registry {\n  fun get() = 1\n}\nclass Store(val name: String) : Shape {\n  var count = 0\n  constructor() : this(\"x\")\n  override fun area(): Double {\n    val local = 1\n    return 0.0\n  }\n  companion object {\n    fun create() = Store()\n  }\n}\nfun main() {}\n",
        ),
        (
            Lang::Swift,
            "import Foundation\nlet maxCount = 3\ntypealias Id = String\nprotocol Shape { func area() -> Double\n  var sides: Int { get } }\nstruct Point { var x: Int; let y: Int }\nenum Color { case red, green\n  case custom(Int) }\nclass Store: Shape {\n  var count = 0\n  init() {}\n  func area() -> Double { let local = 1; return 0 }\n}\nextension Store { func extra() {} }\nactor Worker {}\nfunc main() {}\n",
        ),
        (
            Lang::Shell,
            "#!/bin/bash\nalias ll='ls -l'\nVERSION=1\nfunction greet { echo hi; }\nbuild() {\n  local x=1\n}\n",
        ),
        (
            Lang::Lua,
            "local M = {}\nfunction M.new() end\nfunction M:method() end\nlocal function helper() end\nfunction global() end\nfunction a.b.c() end\nreturn M\n",
        ),
    ];
}
