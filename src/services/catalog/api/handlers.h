// HTTP handlers of the catalog: listings, inventory, browse and categories.
#pragma once

#include "core/crypto/cursor.h"
#include "core/http/app.h"
#include "services/catalog/domain/service.h"

namespace agora::catalog {

// `inline_reads`: run the product detail read on the I/O thread (the
// embedded SQLite store with its listing cache; a WAL read never waits).
void AddRoutes(http::App& app, CatalogService& service, const crypto::CursorCodec& cursors, bool inline_reads);

}  // namespace agora::catalog
