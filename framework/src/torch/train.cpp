// Generic supervised training loop for the shipped models (ResNet on images, LLaMA on text).
//
// The loop only uses the Model/Dataset interfaces: batches from Dataset::training_epoch, the
// family's mean cross-entropy Model::loss, and Model::evaluate on the held-out split. SGD with
// momentum (CNNs) or AdamW (transformers), linear warm-up then cosine decay.
#include "hawq/train.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "hawq/checkpoint.h"
#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/progress.h"
#include "hawq/registry.h"
#include "hawq/version.h"

namespace hawq {

int run_training(const LoadedConfig& cfg, const std::string& command_line) {
  const Params root = cfg.params();
  const Params model_spec = root.child("model");
  const Params data_spec = root.child("data");
  const Params tr = root.child("train");
  const std::string output = root.get_string("output", "");
  const std::string save_dtype = root.get_choice("save_dtype", "F32", {"F32", "F16", "BF16"});
  if (output.empty()) throw ConfigError(root.where("output") + ": expected the output folder");
  const std::string model_name = model_spec.get_string("name", "");
  const std::string data_name = data_spec.get_string("name", "");
  const std::int64_t epochs = tr.get_int("epochs", 1);
  const std::int64_t max_steps = tr.get_int("max_steps", 0);
  const std::int64_t bs = tr.get_int("batch_size", 128);
  const double lr = tr.get_double("lr", 0.1);
  const double wd = tr.get_double("weight_decay", 5e-4);
  const double momentum = tr.get_double("momentum", 0.9);
  const std::string opt_name = tr.get_choice("optimizer", "sgd", {"sgd", "adamw"});
  const std::int64_t warmup = tr.get_int("warmup_steps", 0);
  const std::uint64_t seed = static_cast<std::uint64_t>(tr.get_int("seed", 0));
  const int threads = static_cast<int>(tr.get_int("threads", 0));
  const std::int64_t eval_samples = tr.get_int("eval_samples", 0);
  const std::int64_t eval_bs = tr.get_int("eval_batch_size", 256);
  const double clip = tr.get_double("grad_clip", 0.0);
  const std::int64_t log_every = tr.get_int("log_every", 50);
  tr.check_all_used();
  root.check_all_used();
  if (threads > 0) torch::set_num_threads(threads);

  torch::manual_seed(seed);
  auto model = Registry<Model>::instance().create(model_name, model_spec.child("params"), model_spec.where("name"));
  model_spec.check_all_used();
  auto data = Registry<Dataset>::instance().create(data_name, data_spec.child("params"), data_spec.where("name"));
  data_spec.check_all_used();

  auto params = model->module().parameters();
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (opt_name == "sgd") {
    opt = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(lr).momentum(momentum).weight_decay(wd).nesterov(true));
  } else {
    opt = std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).weight_decay(wd).betas({0.9, 0.95}));
  }
  // Steps are known up front so the cosine schedule reaches zero at the end.
  const std::int64_t steps_per_epoch = static_cast<std::int64_t>(data->training_epoch(bs, seed).size());
  std::int64_t total = epochs * steps_per_epoch;
  if (max_steps > 0) total = std::min(total, max_steps);
  Progress progress("train", total);
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t step = 0;
  double last_loss = 0;
  for (std::int64_t e = 0; e < epochs && step < total; ++e) {
    model->module().train();
    auto batches = data->training_epoch(bs, seed + 1000003ull * static_cast<std::uint64_t>(e));
    for (auto& b : batches) {
      if (step >= total) break;
      const double f = step < warmup ? double(step + 1) / double(warmup)
                                     : 0.5 * (1 + std::cos(M_PI * double(step - warmup) / double(std::max<std::int64_t>(1, total - warmup))));
      for (auto& g : opt->param_groups()) g.options().set_lr(lr * f);
      opt->zero_grad();
      auto loss = model->loss(b);
      if (!std::isfinite(loss.item<double>())) throw UserError("training diverged: loss is not finite at step " + std::to_string(step));
      loss.backward();
      if (clip > 0) torch::nn::utils::clip_grad_norm_(params, clip);
      opt->step();
      last_loss = 0.9 * last_loss + 0.1 * loss.item<double>();
      ++step;
      progress.update(step, "loss " + std::to_string(last_loss).substr(0, 6));
      if (!progress.is_tty() && log_every > 0 && step % log_every == 0)
        std::fprintf(stderr, "train: step %lld/%lld loss %.4f\n", (long long)step, (long long)total, last_loss);
    }
  }
  progress.finish();
  model->module().eval();
  auto eval = data->evaluation(eval_samples, eval_bs);
  const double metric = model->evaluate(eval);
  std::int64_t eval_count = 0;
  for (const auto& b : eval) eval_count += b.size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  make_dirs(output);
  save_state_dict(model->module(), output + "/model.safetensors", save_dtype, {{"format", "pt"}});
  write_file_atomic(output + "/config.json", model->config_json() + "\n");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json rec = {{"command", command_line},
                        {"config", cfg.dump()},
                        {"seed", seed},
                        {"steps", step},
                        {"epochs", epochs},
                        {"final_train_loss_ema", last_loss},
                        {"metric_name", model->metric_name()},
                        {"heldout_metric", metric},
                        {"heldout_examples", eval_count},
                        {"dataset", data->describe()},
                        {"seconds", seconds},
                        {"threads", torch::get_num_threads()},
                        {"host", host},
                        {"hawq_bench_version", HAWQ_VERSION},
                        {"git_revision", HAWQ_GIT_REVISION}};
  write_file_atomic(output + "/train_record.json", rec.dump(2) + "\n");
  std::printf("trained %s: held-out %s = %.4f over %lld examples (%lld steps, %.0f s); wrote %s\n", model_name.c_str(),
              model->metric_name().c_str(), metric, (long long)eval_count, (long long)step, seconds, output.c_str());
  return 0;
}

}  // namespace hawq
