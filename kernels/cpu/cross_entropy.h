// Softmax cross-entropy over the last dimension on the CPU.
#pragma once

#include <cstdint>

namespace st::cpu {

// losses[r] = -ln softmax(logits[r])[targets[r]] (nats);
// d_logits = (softmax - onehot) * d_scale when not null.  d_logits may be
// logits itself.  Targets are already range-checked.
template <class T>
void softmax_cross_entropy(T* losses, T* d_logits, const T* logits, const int32_t* targets,
                           int64_t rows, int64_t classes, T d_scale);

}  // namespace st::cpu
