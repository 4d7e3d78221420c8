// Issue 15 items 4 and 5 at the store's API, on both backends (backend.h): the options a deploy
// or channel rollback records for the agents (migration 0009), and canary rollouts: a candidate
// generation after the current one that only canaries see, the canaries chosen (excluded nodes
// never), and the decision the store makes when they report (promoted when every canary
// applied it, dropped when one did not, the channel then back where it was, the candidate's
// number used again), kept across a reopen; an operator's promote/drop; exclude/include.
#include <gtest/gtest.h>

#include "../server/srvtest_release.h"
#include "backend.h"
#include "store_test_util.h"

namespace codestore {
namespace {

using namespace store_testing;
using server::testing::release_of;

const std::string kFixtures = std::string(CODESTORE_SOURCE_DIR) + "/tests/fixtures/images";

class StoreRollouts : public BackendTest {
 protected:
  void SetUp() override {
    path_ = store_at(dir_);
    store_ = open_or_die(path_, prod());
    ASSERT_TRUE(store_);
    for (const auto& [vsn, beam] :
         {std::pair{"1.0", "/server/v1/m.beam"}, std::pair{"2.0", "/server/v2/m.beam"}}) {
      auto r = store_->import_release(release_of(vsn, kFixtures + beam));
      ASSERT_TRUE(r) << r.error().to_string();
    }
    auto d = store_->deploy({"rel", "1.0"});
    ASSERT_TRUE(d) << d.error().to_string();
    base_ = d->generation;
    ASSERT_GT(base_, 0);
    for (const std::string name : {"a1@h", "a2@h", "a3@h"}) {
      NodeReport r;
      r.name = name;
      r.address = "127.0.0.1:1";
      r.channel = "prod";
      r.generation = base_;
      r.seen_at = 1700000000;
      auto ids = store_->record_nodes({r});
      ASSERT_TRUE(ids) << ids.error().to_string();
      ids_[name] = ids->front();
    }
  }
  static StoreOptions prod() {
    StoreOptions o;
    o.channel = "prod";
    return o;
  }
  // m's version in generation `number` of prod (0: current).
  std::int64_t m_version(std::int64_t number = 0) {
    auto g = store_->channel_generation("prod", number);
    EXPECT_TRUE(g) << g.error().to_string();
    if (!g) return -1;
    for (const auto& e : g->content)
      if (e.module == "m") return e.version;
    return 0;
  }
  Status report(const std::string& node, std::int64_t to, const std::string& outcome,
                const std::string& reason = "") {
    NodeUpgrade u;
    u.node = ids_[node];
    u.node_name = node;
    u.channel = "prod";
    u.from_generation = base_;
    u.to_generation = to;
    u.outcome = outcome;
    u.reason = reason;
    auto id = store_->record_node_upgrade(u);
    return id ? Status::ok() : id.error();
  }
  ChannelInfo prod_info() {
    auto ch = store_->channels();
    EXPECT_TRUE(ch);
    for (const auto& c : ch ? *ch : std::vector<ChannelInfo>{})
      if (c.name == "prod") return c;
    ADD_FAILURE() << "no channel prod";
    return {};
  }
  Rollout newest() {
    auto r = store_->rollouts("prod", 1);
    EXPECT_TRUE(r && r->size() == 1);
    return r && !r->empty() ? r->front() : Rollout{};
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::int64_t base_ = 0;
  std::map<std::string, std::int64_t> ids_;
};
CODESTORE_BOTH_BACKENDS(StoreRollouts);

TEST_P(StoreRollouts, DeployAndRollbackRecordTheAgentsOptionsWithTheGeneration) {
  const UpgradeOptions up{.deadline_ms = 4000, .brutal = true, .force = false, .probe = "m:healthy/0"};
  auto d = store_->deploy({"rel", "2.0"}, Reason("r"), {.upgrade = up});
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_FALSE(d->candidate);
  auto g = store_->channel_generation("prod");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->number, d->generation);
  EXPECT_EQ(g->upgrade, up);
  auto rb = store_->channel_rollback(Reason("back"), {.force = true, .probe = "m:ok"});
  ASSERT_TRUE(rb) << rb.error().to_string();
  EXPECT_EQ(rb->upgrade.probe, "m:ok");
  EXPECT_TRUE(rb->upgrade.force);
  EXPECT_FALSE(rb->upgrade.brutal);
  // The deploy's generation keeps its own.
  EXPECT_EQ(store_->channel_generation("prod", d->generation)->upgrade, up);
  for (const std::string bad : {"m", "M:f", "m:f/1", "m:", ":f", "m:f:g"}) {
    auto x = store_->deploy({"rel", "1.0"}, {}, {.upgrade = {.probe = bad}});
    ASSERT_FALSE(x) << bad;
    EXPECT_EQ(x.error().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(parse_probe("m:f/0"), (std::pair<std::string, std::string>{"m", "f"}));
  EXPECT_EQ(parse_probe(""), std::nullopt);
}

TEST_P(StoreRollouts, ACandidateIsPromotedWhenEveryCanaryAppliedIt) {
  auto before = store_->generation();
  auto d = store_->deploy({"rel", "2.0"}, Reason("canary"), {.upgrade = {.probe = "m:ok"}, .canary = 2});
  ASSERT_TRUE(d) << d.error().to_string();
  ASSERT_TRUE(d->candidate);
  EXPECT_EQ(d->base, base_);
  EXPECT_EQ(d->canaries, 2);
  const std::int64_t cand = d->generation;
  EXPECT_EQ(cand, base_ + 1);
  EXPECT_NE(*store_->generation(), *before);  // every serve looks again
  // The channel stays at its base for everything else; the candidate reads as a generation.
  EXPECT_EQ(store_->channel_generation("prod")->number, base_);
  EXPECT_EQ(prod_info().generation, base_);
  const std::int64_t v1 = m_version(), v2 = m_version(cand);
  EXPECT_NE(v1, v2);
  EXPECT_TRUE(store_->channel_generation("prod", cand)->candidate);
  EXPECT_EQ(store_->channel_generation("prod", cand)->upgrade.probe, "m:ok");
  auto hist = store_->channel_history("prod");
  ASSERT_TRUE(hist);
  EXPECT_EQ(hist->front().number, cand);
  EXPECT_TRUE(hist->front().candidate);
  // No other change meanwhile, nor a second candidate.
  auto other = store_->channel_rollback();
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Code::kFailedPrecondition) << other.error().to_string();
  auto second = store_->deploy({"rel", "1.0"}, {}, {.canary = 1});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Code::kFailedPrecondition);
  // Canaries: an excluded node never; unknown names skipped; as many as wanted.
  ASSERT_TRUE(store_->exclude_node("a1@h", true));
  auto r = store_->add_canaries("prod", cand, {"a1@h", "nobody", "a2@h"});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->nodes.size(), 1u);
  EXPECT_EQ(r->nodes[0].node_name, "a2@h");
  r = store_->add_canaries("prod", cand, {"a2@h", "a3@h", "a1@h"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->nodes.size(), 2u);
  EXPECT_EQ(r->nodes[1].node_name, "a3@h");
  EXPECT_FALSE(store_->add_canaries("prod", cand + 7, {"a3@h"}));
  // A non-canary's report decides nothing; one canary applied: still pending.
  ASSERT_TRUE(report("a1@h", cand, "applied"));
  ASSERT_TRUE(report("a2@h", cand, "applied"));
  EXPECT_EQ(newest().state, "pending");
  EXPECT_EQ(store_->channel_generation("prod")->number, base_);
  // The state is the store's: a reopened handle (a restarted serve) sees it.
  store_.reset();
  store_ = open_or_die(path_, prod());
  ASSERT_TRUE(report("a3@h", cand, "already"));
  const Rollout done = newest();
  EXPECT_EQ(done.state, "promoted") << done.reason;
  EXPECT_EQ(done.candidate, cand);
  EXPECT_EQ(done.release, "rel@2.0");
  EXPECT_GT(done.ended_at, 0);
  EXPECT_EQ(prod_info().generation, cand);
  EXPECT_EQ(prod_info().previous, base_);
  EXPECT_EQ(m_version(), v2);
  EXPECT_FALSE(store_->channel_generation("prod")->candidate);
  // The channel takes changes again; a rollback returns to the base.
  auto back = store_->channel_rollback();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(m_version(), v1);
  auto nodes = store_->nodes({.name = "a1@h"});
  ASSERT_TRUE(nodes && nodes->size() == 1);
  EXPECT_TRUE(nodes->front().excluded);
  ASSERT_TRUE(store_->exclude_node("a1@h", false));
  EXPECT_TRUE(store_->excluded_nodes()->empty());
  EXPECT_EQ(store_->exclude_node("nobody@h", true).code(), Code::kNotFound);
}

TEST_P(StoreRollouts, ACanaryThatDidNotApplyDropsTheCandidateAndTheChannelStays) {
  const std::int64_t v1 = m_version();
  auto d = store_->deploy({"rel", "2.0"}, {}, {.canary = 1});
  ASSERT_TRUE(d) << d.error().to_string();
  const std::int64_t cand = d->generation;
  ASSERT_TRUE(store_->add_canaries("prod", cand, {"a2@h"}));
  ASSERT_TRUE(report("a1@h", cand, "applied"));  // not a canary: decides nothing
  ASSERT_TRUE(report("a2@h", cand, "reverted", "{probe,{m,ok,[],error}}"));
  const Rollout r = newest();
  EXPECT_EQ(r.state, "dropped");
  EXPECT_NE(r.reason.find("a2@h reverted"), std::string::npos) << r.reason;
  ASSERT_EQ(r.nodes.size(), 1u);
  EXPECT_EQ(r.nodes[0].outcome, "reverted");
  auto ups = store_->node_upgrades("a2@h");
  ASSERT_TRUE(ups && !ups->empty());
  EXPECT_EQ(ups->front().reason, "{probe,{m,ok,[],error}}");
  // Back where it was: the base current, its content whole, no candidate.
  EXPECT_EQ(store_->channel_generation("prod")->number, base_);
  EXPECT_EQ(m_version(), v1);
  EXPECT_EQ(store_->channel_generation("prod", cand).error().code(), Code::kNotFound);
  EXPECT_EQ(store_->channel_history("prod")->front().number, base_);
  EXPECT_EQ(store_->end_rollout("prod", true).error().code(), Code::kNotFound);
  // The number is used again, and the intervals read right for both generations.
  auto again = store_->deploy({"rel", "2.0"});
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->generation, cand);
  EXPECT_EQ(m_version(base_), v1);
  EXPECT_NE(m_version(), v1);
  auto diff = store_->generation_diff("prod", base_, "prod", cand);
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->changed.size(), 1u);
}

// Two canaries: a1 applies the candidate, then a2 fails it. Deleting the candidate would leave
// a1 on code no generation describes (and the next change would take its number, so a1 would
// pass for current): the candidate is promoted and rolled back at once, a new generation with
// the base's content that takes a1 back, while the candidate stays readable for that plan.
TEST_P(StoreRollouts, ACanaryThatFailsAfterAnotherAppliedTakesThatOneBack) {
  const std::int64_t v1 = m_version();
  auto d = store_->deploy({"rel", "2.0"}, {}, {.canary = 2});
  ASSERT_TRUE(d) << d.error().to_string();
  const std::int64_t cand = d->generation;
  const std::int64_t v2 = m_version(cand);
  ASSERT_TRUE(store_->add_canaries("prod", cand, {"a1@h", "a2@h"}));
  ASSERT_TRUE(report("a1@h", cand, "applied"));
  ASSERT_TRUE(report("a2@h", cand, "reverted", "{probe,{m,ok,[],error}}"));
  const Rollout r = newest();
  EXPECT_EQ(r.state, "dropped");
  EXPECT_NE(r.reason.find("a2@h reverted"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("takes back the canaries on it (a1@h)"), std::string::npos) << r.reason;
  // The channel: a generation after the candidate, with the base's content.
  auto now_at = store_->channel_generation("prod");
  ASSERT_TRUE(now_at) << now_at.error().to_string();
  EXPECT_EQ(now_at->number, cand + 1);
  EXPECT_FALSE(now_at->candidate);
  EXPECT_EQ(m_version(), v1);
  EXPECT_EQ(m_version(cand), v2);  // the candidate stays what a1 runs
  auto back = store_->generation_diff("prod", cand, "prod", cand + 1);
  ASSERT_TRUE(back) << back.error().to_string();
  ASSERT_EQ(back->changed.size(), 1u);
  auto same = store_->generation_diff("prod", base_, "prod", cand + 1);
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->changed.empty());
  // No number is used twice.
  auto again = store_->deploy({"rel", "2.0"});
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->generation, cand + 2);
  EXPECT_EQ(m_version(), v2);
}

TEST_P(StoreRollouts, AnOperatorEndsAPendingRollout) {
  auto d = store_->deploy({"rel", "2.0"}, {}, {.canary = 1});
  ASSERT_TRUE(d);
  auto dropped = store_->end_rollout("prod", false, Reason("no canary came"));
  ASSERT_TRUE(dropped) << dropped.error().to_string();
  EXPECT_EQ(dropped->state, "dropped");
  EXPECT_EQ(newest().reason, "no canary came");
  EXPECT_EQ(store_->channel_generation("prod")->number, base_);
  d = store_->deploy({"rel", "2.0"}, {}, {.canary = 1});
  ASSERT_TRUE(d) << d.error().to_string();
  auto promoted = store_->end_rollout("prod", true);
  ASSERT_TRUE(promoted) << promoted.error().to_string();
  EXPECT_EQ(store_->channel_generation("prod")->number, d->generation);
  auto ro = store_->rollouts("prod");
  ASSERT_TRUE(ro);
  ASSERT_EQ(ro->size(), 1u);  // the dropped candidate's row went with its number
  EXPECT_EQ(ro->front().state, "promoted");
  // A canary deploy needs a current generation to keep.
  auto fresh = open_or_die(store_at(dir_), [] {
    StoreOptions o;
    o.channel = "empty";
    return o;
  }());
  auto none = fresh->deploy({"rel", "1.0"}, {}, {.canary = 1});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace codestore
