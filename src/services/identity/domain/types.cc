#include "services/identity/domain/types.h"

#include <algorithm>

namespace agora::identity {

bool User::HasRole(const std::string& role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

const char* PurposeName(OneTimePurpose p) {
  switch (p) {
    case OneTimePurpose::kVerifyEmail: return "verify_email";
    case OneTimePurpose::kResetPassword: return "reset_password";
  }
  return "verify_email";
}

}  // namespace agora::identity
