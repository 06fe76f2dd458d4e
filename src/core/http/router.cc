#include "core/http/router.h"

#include <stdexcept>

namespace agora::http {

Route MakeRoute(Method method, std::string pattern, Execution execution, Handler handler) {
  Route r;
  r.method = method;
  r.pattern = std::move(pattern);
  r.execution = execution;
  r.handler = std::move(handler);
  return r;
}

std::vector<std::string_view> Router::Split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::Add(Route route) {
  for (const auto& r : routes_) {
    if (r.method == route.method && r.pattern == route.pattern) {
      throw std::logic_error("duplicate route " + route.pattern);
    }
  }
  Compiled c;
  for (auto s : Split(route.pattern)) c.segments.emplace_back(s);
  c.index = routes_.size();
  bool is_static = route.pattern.find('{') == std::string::npos;
  if (is_static) static_paths_[route.pattern].push_back(c.index);
  compiled_.push_back(std::move(c));
  routes_.push_back(std::move(route));
}

Router::Match Router::Find(Method method, std::string_view path) const {
  Match m;
  const Method want = method == Method::kHead ? Method::kGet : method;
  auto add_allow = [&](const Route& r) {
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += MethodName(r.method);
    if (r.method == Method::kGet) m.allow += ", HEAD";  // HEAD is served wherever GET is
  };
  // Static routes first: one hash lookup for the common case.
  if (auto it = static_paths_.find(path); it != static_paths_.end()) {
    for (size_t idx : it->second) {
      if (routes_[idx].method == want) {
        m.route = &routes_[idx];
        return m;
      }
    }
  }
  auto segs = Split(path);
  for (const auto& c : compiled_) {
    if (c.segments.size() != segs.size()) continue;
    std::vector<std::pair<std::string, std::string>> params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      const std::string& p = c.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
        params.emplace_back(p.substr(1, p.size() - 2), std::string(segs[i]));
      } else if (p != segs[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    const Route& r = routes_[c.index];
    if (r.method == want && m.route == nullptr) {
      m.route = &r;
      m.params = std::move(params);
      return m;
    }
    m.path_exists = true;
    add_allow(r);
  }
  return m;
}

}  // namespace agora::http
