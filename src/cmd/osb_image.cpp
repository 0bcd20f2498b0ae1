// osb image import|list|delete: a worker host's image store
// (<state-dir>/images, docs/templates.md). An image imported here under a
// name is what `templateID: "<name>"` on sandbox create runs on this worker.
#include <iostream>
#include <memory>

#include "cmd/osb_command.h"
#include "images/image_store.h"

namespace {

struct ImageOptions {
  std::string state_dir = "/var/lib/osb/worker";
  std::string file;
  std::string name;
};

const bool registered = osb::cmd::RegisterOsbCommand(45, [](CLI::App& root, int& exit_code) {
  auto opt = std::make_shared<ImageOptions>();
  auto* image = root.add_subcommand("image", "Import, list and delete OCI images in a worker's image store");
  image->require_subcommand(1);
  auto store = [opt] { return osb::images::ImageStore(opt->state_dir + "/images"); };
  auto fail = [&exit_code](const osb::Error& e) {
    std::cerr << "error: " << e.message << "\n";
    exit_code = e.code == osb::ErrorCode::kInvalidArgument || e.code == osb::ErrorCode::kTooLarge ? 2 : 1;
  };

  auto* imp = image->add_subcommand("import", "Verify and unpack an OCI layout or docker-save tarball under a name");
  imp->add_option("file", opt->file, "Tarball (tar, tar.gz) or OCI layout directory")->required();
  imp->add_option("--name", opt->name, "Template name sandboxes select with templateID")->required();
  imp->add_option("--state-dir", opt->state_dir, "The worker's state directory")->capture_default_str();
  imp->callback([opt, store, fail] {
    // A bad name is refused before any work (Resolve checks it first).
    if (auto named = store().Resolve(opt->name); !named && named.error().code == osb::ErrorCode::kInvalidArgument)
      return fail(named.error());
    auto img = store().Import(opt->file);
    if (!img) return fail(img.error());
    if (auto s = store().Tag(opt->name, img->configDigest); !s) return fail(s.error());
    std::cout << opt->name << " " << img->configDigest << "\n";
  });

  auto* list = image->add_subcommand("list", "List named images");
  list->add_option("--state-dir", opt->state_dir, "The worker's state directory")->capture_default_str();
  list->callback([store] {
    for (const auto& n : store().ListNames()) std::cout << n.name << " " << n.configDigest << "\n";
  });

  auto* del = image->add_subcommand("delete", "Remove a name, and its image when no other name uses it (no sandbox may run on it)");
  del->add_option("name", opt->name, "Template name")->required();
  del->add_option("--state-dir", opt->state_dir, "The worker's state directory")->capture_default_str();
  del->callback([opt, store, fail] {
    auto digest = store().Resolve(opt->name);
    if (!digest) return fail(digest.error());
    if (auto s = store().Untag(opt->name); !s) return fail(s.error());
    for (const auto& n : store().ListNames())
      if (n.configDigest == *digest) return;  // still named
    // Run it only when no sandbox runs on the image: their overlays would
    // lose the files below their own writes (docs/templates.md).
    if (auto s = store().Remove(*digest); !s) return fail(s.error());
  });
});

}  // namespace
