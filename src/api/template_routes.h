// REST routes for image templates (docs/templates.md):
//   POST   /api/templates?name=N   import: the body is the image tarball
//                                  (OCI archive or docker save), streamed
//   GET    /api/templates          list        (sandbox-scope keys may call)
//   GET    /api/templates/{name}   one         (sandbox-scope keys may call)
//   DELETE /api/templates/{name}   409 while a sandbox uses it
// The import runs on `calls` (a small executor of its own) and reads the
// body through a ByteChannel: memory stays bounded whatever the size.
#pragma once

#include "api/router.h"
#include "controlplane/long_calls.h"
#include "controlplane/templates.h"

namespace osb::api {

void RegisterTemplateRoutes(Router& router, controlplane::TemplateService& templates, controlplane::LongCalls& calls);

}  // namespace osb::api
