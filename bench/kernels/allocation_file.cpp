#include "allocation_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace hawq::kernels {

LayerAllocation read_layer_allocation(const std::string& path, int layers, const std::vector<WeightShape>& shapes) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the allocation file");
  LayerAllocation a;
  const std::string predicted_key = "predicted M=1 latency of the 224 GEMVs:", variant_key = "# variant:";
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    if (line[0] == '#') {
      if (const auto at = line.find(predicted_key); at != std::string::npos)
        std::istringstream(line.substr(at + predicted_key.size())) >> a.predicted_us;
      if (line.compare(0, variant_key.size(), variant_key) == 0) {
        std::istringstream v(line.substr(variant_key.size()));
        std::string name;
        if (!(v >> name)) throw std::runtime_error(path + ":" + std::to_string(lineno) + ": `# variant:` without a name");
        a.variant = name;
      }
      continue;
    }
    std::istringstream fields(line);
    int layer = -1, r0 = -1, r1 = -1, bits = 0;
    std::string role, extra;
    const bool parsed = static_cast<bool>(fields >> layer >> role >> r0 >> r1 >> bits) && !(fields >> extra);
    const auto shape = std::find_if(shapes.begin(), shapes.end(), [&](const WeightShape& s) { return s.role == role; });
    const auto where = path + ":" + std::to_string(lineno) + ": ";
    if (!parsed) throw std::runtime_error(where + "expected \"layer role row_begin row_end bits\", got \"" + line + "\"");
    if (shape == shapes.end()) throw std::runtime_error(where + "unknown weight role '" + role + "'");
    if (layer < 0 || layer >= layers)
      throw std::runtime_error(where + "layer " + std::to_string(layer) + " outside [0, " + std::to_string(layers) + ")");
    if (r0 < 0 || r1 <= r0 || r1 > shape->n || r0 % kTileRows || r1 % kTileRows)
      throw std::runtime_error(where + "rows [" + std::to_string(r0) + ", " + std::to_string(r1) +
                               ") must be multiples of 16 within [0, " + std::to_string(shape->n) + ")");
    if (!valid_bits(bits)) throw std::runtime_error(where + "width " + std::to_string(bits) + " (expected 2, 3, 4 or 8)");
    a.blocks[{layer, role}].push_back({r0, r1, 0, shape->k, bits});
  }
  for (int l = 0; l < layers; ++l)
    for (const WeightShape& s : shapes) {
      auto& b = a.blocks[{l, s.role}];
      std::sort(b.begin(), b.end(), [](const BitBlock& x, const BitBlock& y) { return x.row0 < y.row0; });
      int next = 0;
      for (const BitBlock& x : b) {
        if (x.row0 != next)
          throw std::runtime_error(path + ": layer " + std::to_string(l) + " " + s.role + ": rows from " +
                                   std::to_string(std::min(next, x.row0)) +
                                   (x.row0 < next ? " are covered twice" : " are not covered"));
        next = x.row1;
      }
      if (next != s.n)
        throw std::runtime_error(path + ": layer " + std::to_string(l) + " " + s.role + ": rows from " +
                                 std::to_string(next) + " to " + std::to_string(s.n) + " are not covered");
    }
  return a;
}

}  // namespace hawq::kernels
