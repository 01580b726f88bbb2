// A small JSON Schema check of the keywords input schemas use most, so a run's input is
// checked in the browser before it is sent. The API's own check (full JSON Schema) stays
// the authority: its 422 details are shown as they come.

const FORMATS = {
  email: /^[^@\s]+@[^@\s]+\.[^@\s]+$/,
  "date-time": /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  uri: /^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/,
  uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
};

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function matchesType(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

const show = (v) => JSON.stringify(v);

/** Every problem of ``value`` against ``schema``: [{path, message, rule}]. */
export function validate(schema, value, path = "") {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [{path: path || "/", message: "no value is allowed here", rule: "false"}];
  const out = [];
  const at = path || "/";
  const add = (rule, message) => out.push({path: at, message, rule});
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) {
      add("type", `${show(value)} is not of type ${types.map(show).join(", ")}`);
      return out;
    }
  }
  if (schema.enum && !schema.enum.some((e) => show(e) === show(value))) add("enum", `${show(value)} is not one of ${show(schema.enum)}`);
  if ("const" in schema && show(schema.const) !== show(value)) add("const", `${show(schema.const)} was expected`);
  const kind = typeOf(value);
  if (kind === "string") {
    if (schema.minLength !== undefined && [...value].length < schema.minLength) add("minLength", `${show(value)} is too short`);
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) add("maxLength", `${show(value)} is too long`);
    if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) add("pattern", `${show(value)} does not match ${show(schema.pattern)}`);
    if (schema.format && FORMATS[schema.format] && !FORMATS[schema.format].test(value)) add("format", `${show(value)} is not a ${show(schema.format)}`);
  }
  if (kind === "number" || kind === "integer") {
    if (schema.minimum !== undefined && value < schema.minimum) add("minimum", `${value} is less than the minimum of ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) add("maximum", `${value} is greater than the maximum of ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) add("exclusiveMinimum", `${value} must be greater than ${schema.exclusiveMinimum}`);
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) add("exclusiveMaximum", `${value} must be less than ${schema.exclusiveMaximum}`);
    if (schema.multipleOf && Math.abs(value / schema.multipleOf - Math.round(value / schema.multipleOf)) > 1e-9) add("multipleOf", `${value} is not a multiple of ${schema.multipleOf}`);
  }
  if (kind === "array") {
    if (schema.minItems !== undefined && value.length < schema.minItems) add("minItems", value.length ? `${show(value)} is too short` : "[] should be non-empty");
    if (schema.maxItems !== undefined && value.length > schema.maxItems) add("maxItems", `${show(value)} is too long`);
    if (schema.uniqueItems && new Set(value.map(show)).size !== value.length) add("uniqueItems", "has non-unique elements");
    if (schema.items && typeof schema.items === "object" || typeof schema.items === "boolean") {
      value.forEach((item, i) => out.push(...validate(schema.items, item, `${path}/${i}`)));
    }
  }
  if (kind === "object") {
    for (const name of schema.required || []) {
      if (!(name in value)) add("required", `${show(name)} is a required property`);
    }
    const props = schema.properties || {};
    for (const [name, sub] of Object.entries(props)) {
      if (name in value) out.push(...validate(sub, value[name], `${path}/${escape(name)}`));
    }
    if (schema.additionalProperties !== undefined && schema.additionalProperties !== true) {
      for (const name of Object.keys(value).filter((n) => !(n in props))) {
        if (schema.additionalProperties === false) add("additionalProperties", `additional property ${show(name)} is not allowed`);
        else out.push(...validate(schema.additionalProperties, value[name], `${path}/${escape(name)}`));
      }
    }
    if (schema.minProperties !== undefined && Object.keys(value).length < schema.minProperties) add("minProperties", "has too few properties");
  }
  for (const sub of schema.allOf || []) out.push(...validate(sub, value, path));
  if (schema.anyOf && !schema.anyOf.some((sub) => !validate(sub, value, path).length)) add("anyOf", `${show(value)} is not valid under any of the given schemas`);
  if (schema.oneOf && schema.oneOf.filter((sub) => !validate(sub, value, path).length).length !== 1) add("oneOf", `${show(value)} is not valid under exactly one of the given schemas`);
  return out;
}

function escape(name) {
  return String(name).replaceAll("~", "~0").replaceAll("/", "~1");
}

/** A starting input that shows the shape the schema asks for. */
export function skeleton(schema) {
  if (!schema || typeof schema !== "object") return {};
  if (schema.default !== undefined) return schema.default;
  if (schema.enum) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === "object" || schema.properties) {
    const out = {};
    for (const name of schema.required || Object.keys(schema.properties || {})) {
      out[name] = skeleton((schema.properties || {})[name]);
    }
    return out;
  }
  if (type === "array") return schema.minItems ? [skeleton(schema.items)] : [];
  if (type === "integer" || type === "number") return schema.minimum ?? 0;
  if (type === "boolean") return false;
  if (type === "string") return schema.format === "email" ? "someone@example.com" : "";
  return null;
}
