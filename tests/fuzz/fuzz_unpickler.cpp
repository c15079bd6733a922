// The restricted unpickler (pickle.cpp) on arbitrary bytes: up to four pickles read back to back,
// as a legacy checkpoint holds them, with persistent ids shaped like torch.save's storage tuples.
#include "fuzz_input.h"

#include "core/pickle.h"

namespace {

using bagnet::detail::PyKind;
using bagnet::detail::PyValue;

bagnet::detail::StorageRef storage_of(const PyValue& pid) {
  BAGNET_CHECK(pid.kind == PyKind::Tuple && pid.items.size() >= 5, bagnet::ErrorKind::BadInput,
               "fuzz input: persistent id is not a storage tuple");
  const PyValue& type = *pid.items[1];
  const PyValue& key = *pid.items[2];
  const PyValue& numel = *pid.items[4];
  BAGNET_CHECK(key.kind == PyKind::Str && numel.kind == PyKind::Int && numel.integer >= 0,
               bagnet::ErrorKind::BadInput, "fuzz input: malformed storage tuple");
  bagnet::detail::StorageRef ref;
  ref.key = key.text;
  ref.dtype = bagnet::detail::storage_dtype(type, "fuzz input");
  ref.numel = ref.root_numel = numel.integer;
  return ref;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return bagnet::fuzz::expect_clean([&] {
    bagnet::detail::Unpickler unpickler;
    const bagnet::detail::Unpickler::PersistentLoad load = storage_of;
    size_t pos = 0;
    for (int i = 0; i < 4 && pos < size; ++i) unpickler.load(data, size, pos, load, "fuzz input");
  });
}
