#include <mnemo/base/utf8.h>

#include <simdjson.h>

namespace mnemo::utf8 {

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t sequence_length(std::string_view s, bool& valid) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = at(0);
  valid = false;
  if (b < 0x80) {
    valid = true;
    return 1;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 1;  // never a lead byte
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= s.size()) return 0;
    unsigned char c = at(k);
    bool ok = (k == 1) ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return k;  // the maximal subpart ends before this byte
  }
  valid = true;
  return need;
}

Status validate(std::string_view s) {
  if (simdjson::validate_utf8(s.data(), s.size())) return Status::ok();
  for (size_t i = 0; i < s.size();) {
    bool valid;
    size_t n = sequence_length(s.substr(i), valid);
    if (!valid) {
      return Status::invalid_argument("invalid UTF-8 at byte " + std::to_string(i));
    }
    i += n;
  }
  return Status::invalid_argument("invalid UTF-8");
}

size_t decode_lossy(std::string_view bytes, std::string& out, bool final) {
  size_t i = 0;
  while (i < bytes.size()) {
    size_t start = i;
    while (i < bytes.size() && static_cast<unsigned char>(bytes[i]) < 0x80) ++i;
    out.append(bytes.data() + start, i - start);
    if (i == bytes.size()) break;
    bool valid;
    size_t n = sequence_length(bytes.substr(i), valid);
    if (n == 0) {
      if (!final) return i;
      out.append("\xEF\xBF\xBD");
      return bytes.size();
    }
    if (valid) {
      out.append(bytes.data() + i, n);
    } else {
      out.append("\xEF\xBF\xBD");
    }
    i += n;
  }
  return bytes.size();
}

}  // namespace mnemo::utf8
