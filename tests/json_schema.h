#pragma once
// A small JSON Schema validator for the keywords docs/report-schema.json uses: type, required,
// properties, additionalProperties (boolean), items, enum, minimum, maximum, exclusiveMinimum,
// minItems, maxItems, minLength, maxLength and local $ref ("#/$defs/..."). Any other keyword in a
// schema is an error, so the schema cannot silently rely on something unchecked. Annotations
// (description, title, $schema, $id, $defs) are ignored.
#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

#include <set>
#include <string>
#include <vector>

namespace bagnet::test {

class SchemaValidator {
 public:
  explicit SchemaValidator(nlohmann::json root) : root_(std::move(root)) {}

  // Every violation as "path: what"; empty when `instance` is valid.
  std::vector<std::string> validate(const nlohmann::json& instance) const {
    std::vector<std::string> errors;
    check(root_, instance, "$", errors);
    return errors;
  }

 private:
  nlohmann::json root_;

  static bool has_type(const nlohmann::json& v, const std::string& type) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    throw std::invalid_argument("schema: unknown type '" + type + "'");
  }

  const nlohmann::json& resolve(const std::string& ref) const {
    if (ref.rfind("#/", 0) != 0) throw std::invalid_argument("schema: only local $ref supported, got " + ref);
    return root_.at(nlohmann::json::json_pointer(ref.substr(1)));
  }

  void check(const nlohmann::json& schema, const nlohmann::json& v, const std::string& path,
             std::vector<std::string>& errors) const {
    static const std::set<std::string> known{"type", "required", "properties", "additionalProperties", "items", "enum",
                                             "minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems",
                                             "minLength", "maxLength", "$ref", "description", "title", "$schema",
                                             "$id", "$defs"};
    for (const auto& [key, value] : schema.items())
      if (!known.count(key)) throw std::invalid_argument("schema: unsupported keyword '" + key + "' at " + path);
    if (schema.contains("$ref")) check(resolve(schema["$ref"].get<std::string>()), v, path, errors);
    if (schema.contains("type")) {
      const auto& t = schema["type"];
      bool ok = false;
      if (t.is_string()) ok = has_type(v, t.get<std::string>());
      for (const auto& one : t.is_array() ? t : nlohmann::json::array()) ok = ok || has_type(v, one.get<std::string>());
      if (!ok) {
        errors.push_back(path + ": expected type " + t.dump() + ", got " + v.type_name());
        return;  // the other keywords would only repeat the mismatch
      }
    }
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& option : schema["enum"]) found = found || option == v;
      if (!found) errors.push_back(path + ": " + v.dump() + " not in " + schema["enum"].dump());
    }
    if (v.is_number()) {
      const double x = v.get<double>();
      if (schema.contains("minimum") && x < schema["minimum"].get<double>())
        errors.push_back(path + ": " + v.dump() + " < minimum " + schema["minimum"].dump());
      if (schema.contains("maximum") && x > schema["maximum"].get<double>())
        errors.push_back(path + ": " + v.dump() + " > maximum " + schema["maximum"].dump());
      if (schema.contains("exclusiveMinimum") && x <= schema["exclusiveMinimum"].get<double>())
        errors.push_back(path + ": " + v.dump() + " <= exclusiveMinimum " + schema["exclusiveMinimum"].dump());
    }
    if (v.is_string()) {
      const auto n = v.get<std::string>().size();
      if (schema.contains("minLength") && n < schema["minLength"].get<size_t>()) errors.push_back(path + ": string too short");
      if (schema.contains("maxLength") && n > schema["maxLength"].get<size_t>()) errors.push_back(path + ": string too long");
    }
    if (v.is_array()) {
      if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>())
        errors.push_back(path + ": fewer than " + schema["minItems"].dump() + " items");
      if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>())
        errors.push_back(path + ": more than " + schema["maxItems"].dump() + " items");
      if (schema.contains("items"))
        for (size_t i = 0; i < v.size(); ++i) check(schema["items"], v[i], path + "[" + std::to_string(i) + "]", errors);
    }
    if (v.is_object()) {
      for (const auto& key : schema.value("required", nlohmann::json::array()))
        if (!v.contains(key.get<std::string>())) errors.push_back(path + ": missing required '" + key.get<std::string>() + "'");
      const auto properties = schema.value("properties", nlohmann::json::object());
      for (const auto& [key, value] : v.items()) {
        if (properties.contains(key))
          check(properties[key], value, path + "." + key, errors);
        else if (schema.contains("additionalProperties") && !schema["additionalProperties"].get<bool>())
          errors.push_back(path + ": unexpected property '" + key + "'");
      }
    }
  }
};

}  // namespace bagnet::test
