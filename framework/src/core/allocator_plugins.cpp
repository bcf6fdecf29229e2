// Anchor of the allocator plugin library: the allocators themselves live in allocators/, one file
// each, and register themselves; this file keeps the OBJECT library well-formed in every build.
namespace hawq {
int allocator_plugins_anchor = 0;
}  // namespace hawq
