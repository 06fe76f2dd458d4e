#include "core/clock.h"

#include <chrono>

namespace agora {

std::string FormatRfc3339(TimePoint t) {
  // Calendar arithmetic from <chrono> and digits written by hand: this runs
  // for every timestamp in every response and log line.
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  const int y = static_cast<int>(ymd.year());
  const unsigned fields[] = {static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                             static_cast<unsigned>(hms.hours().count()), static_cast<unsigned>(hms.minutes().count()),
                             static_cast<unsigned>(hms.seconds().count())};
  const unsigned millis = static_cast<unsigned>(hms.subseconds().count());
  char buf[24];
  auto two = [](char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  const unsigned uy = static_cast<unsigned>(y < 0 ? 0 : y % 10000);
  buf[0] = static_cast<char>('0' + uy / 1000);
  buf[1] = static_cast<char>('0' + uy / 100 % 10);
  buf[2] = static_cast<char>('0' + uy / 10 % 10);
  buf[3] = static_cast<char>('0' + uy % 10);
  buf[4] = '-';
  two(buf + 5, fields[0]);
  buf[7] = '-';
  two(buf + 8, fields[1]);
  buf[10] = 'T';
  two(buf + 11, fields[2]);
  buf[13] = ':';
  two(buf + 14, fields[3]);
  buf[16] = ':';
  two(buf + 17, fields[4]);
  buf[19] = '.';
  buf[20] = static_cast<char>('0' + millis / 100);
  buf[21] = static_cast<char>('0' + millis / 10 % 10);
  buf[22] = static_cast<char>('0' + millis % 10);
  buf[23] = 'Z';
  return std::string(buf, 24);
}

}  // namespace agora
