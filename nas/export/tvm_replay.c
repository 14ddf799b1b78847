/* Replays one inference of a TVM-compiled model through its kernels alone, without the TVM runtime.
 *
 * nas.export.tvm_replay records, on the host, every kernel call the Relax VM makes for one image (the
 * kernel's name, its tensor arguments as (buffer, offset, dtype, shape)) and the bytes of every buffer
 * that is read before any kernel writes it (the image and the model's constants). This program loads
 * the exported library with dlopen, fills those buffers, poisons every other byte with 0xFF (NaN for
 * float32, so a value the kernels did not compute cannot reach the output unnoticed), calls the
 * library's kernels (exported as __tvm_ffi_<name>) in the recorded order and writes the output tensor.
 * Built with a cross compiler and run under qemu, it runs a cross-compiled library's own code.
 *
 * usage: tvm_replay LIBRARY TRACE IMAGES N OUT
 *   IMAGES: N raw inputs of the input tensor's byte size; OUT: N raw outputs, concatenated.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tvm/ffi/c_api.h>

/* The TVM runtime's backend ABI for parallel loops (tvm/runtime/c_backend_api.h). */
typedef struct {
  void* sync_handle;
  int32_t num_task;
} ParallelEnv;
typedef int (*ParallelLambda)(int task_id, ParallelEnv* env, void* cdata);
typedef int (*KernelFn)(void* self, const TVMFFIAny* args, int32_t num_args, TVMFFIAny* result);

enum { ARG_TENSOR = 0, ARG_INT = 1, ARG_FLOAT = 2 };

typedef struct {
  uint64_t nbytes;
  uint8_t* data;
  uint32_t n_segments;
  uint64_t* seg_offset;
  uint64_t* seg_len;
  uint8_t** seg_data;
} Buffer;

typedef struct {
  KernelFn fn;
  char* name;
  uint32_t n_args;
  TVMFFIAny* args;
  DLTensor* tensors;
  uint32_t* buffer_of;
  uint64_t* offset_of;
} Call;

static FILE* trace;
static char last_error[4096];

static void die(const char* what, const char* detail) {
  fprintf(stderr, "tvm_replay: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static void read_exact(void* out, size_t n) {
  if (n && fread(out, 1, n, trace) != n) die("truncated trace", NULL);
}

static uint64_t read_u64(void) {
  uint64_t v;
  read_exact(&v, 8);
  return v;
}

static uint32_t read_u32(void) {
  uint32_t v;
  read_exact(&v, 4);
  return v;
}

static void* alloc(size_t n) {
  void* p = NULL;
  if (posix_memalign(&p, 64, n ? n : 1) != 0) die("out of memory", NULL);
  return p;
}

/* What the TVM runtime otherwise provides to a loaded library. */
void TVMFFIErrorSetRaisedFromCStr(const char* kind, const char* message) {
  snprintf(last_error, sizeof last_error, "%s: %s", kind, message);
}

void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** parts, int32_t n) {
  size_t used = (size_t)snprintf(last_error, sizeof last_error, "%s: ", kind);
  for (int32_t i = 0; i < n && used < sizeof last_error; ++i) {
    if (parts[i]) used += (size_t)snprintf(last_error + used, sizeof last_error - used, "%s", parts[i]);
  }
}

static void* alloc_workspace(int device_type, int device_id, uint64_t nbytes, int code, int bits) {
  (void)device_type, (void)device_id, (void)code, (void)bits;
  return alloc(nbytes);
}

static int free_workspace(int device_type, int device_id, void* ptr) {
  (void)device_type, (void)device_id;
  free(ptr);
  return 0;
}

static int parallel_launch(ParallelLambda fn, void* cdata, int num_task) {
  (void)num_task;
  ParallelEnv env = {NULL, 1};
  return fn(0, &env, cdata); /* one thread: the single task runs every iteration */
}

static int parallel_barrier(int task_id, ParallelEnv* env) {
  (void)task_id, (void)env;
  return 0;
}

static void provide(void* library, const char* symbol, void* fn) {
  void** slot = (void**)dlsym(library, symbol);
  if (slot) *slot = fn;
}

static void reset(Buffer* buffers, uint32_t n) {
  for (uint32_t b = 0; b < n; ++b) {
    memset(buffers[b].data, 0xFF, buffers[b].nbytes);
    for (uint32_t s = 0; s < buffers[b].n_segments; ++s) {
      memcpy(buffers[b].data + buffers[b].seg_offset[s], buffers[b].seg_data[s], buffers[b].seg_len[s]);
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 6) die("usage: tvm_replay LIBRARY TRACE IMAGES N OUT", NULL);
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
  if (!library) die("cannot load the library", dlerror());
  provide(library, "__TVMBackendAllocWorkspace", (void*)alloc_workspace);
  provide(library, "__TVMBackendFreeWorkspace", (void*)free_workspace);
  provide(library, "__TVMBackendParallelLaunch", (void*)parallel_launch);
  provide(library, "__TVMBackendParallelBarrier", (void*)parallel_barrier);
  provide(library, "__TVMFFIErrorSetRaisedFromCStr", (void*)TVMFFIErrorSetRaisedFromCStr);

  trace = fopen(argv[2], "rb");
  if (!trace) die("cannot open the trace", argv[2]);
  char magic[8];
  read_exact(magic, 8);
  if (memcmp(magic, "NASTVMR1", 8) != 0) die("not a replay trace", argv[2]);
  uint32_t n_buffers = read_u32();
  Buffer* buffers = calloc(n_buffers, sizeof(Buffer));
  for (uint32_t b = 0; b < n_buffers; ++b) {
    Buffer* buf = &buffers[b];
    buf->nbytes = read_u64();
    buf->data = alloc(buf->nbytes);
    buf->n_segments = read_u32();
    buf->seg_offset = calloc(buf->n_segments + 1, sizeof(uint64_t));
    buf->seg_len = calloc(buf->n_segments + 1, sizeof(uint64_t));
    buf->seg_data = calloc(buf->n_segments + 1, sizeof(uint8_t*));
    for (uint32_t s = 0; s < buf->n_segments; ++s) {
      buf->seg_offset[s] = read_u64();
      buf->seg_len[s] = read_u64();
      buf->seg_data[s] = malloc(buf->seg_len[s] ? buf->seg_len[s] : 1);
      read_exact(buf->seg_data[s], buf->seg_len[s]);
      if (buf->seg_offset[s] + buf->seg_len[s] > buf->nbytes) die("segment outside its buffer", NULL);
    }
  }
  uint32_t in_buffer = read_u32(), out_buffer = read_u32();
  uint64_t in_offset = read_u64(), in_bytes = read_u64(), out_offset = read_u64(), out_bytes = read_u64();
  if (in_buffer >= n_buffers || out_buffer >= n_buffers) die("bad input or output buffer", NULL);
  uint32_t n_calls = read_u32();
  Call* calls = calloc(n_calls, sizeof(Call));
  for (uint32_t c = 0; c < n_calls; ++c) {
    Call* call = &calls[c];
    uint32_t len = read_u32();
    call->name = calloc(len + 1, 1);
    read_exact(call->name, len);
    char symbol[512];
    snprintf(symbol, sizeof symbol, "__tvm_ffi_%s", call->name);
    call->fn = (KernelFn)dlsym(library, symbol);
    if (!call->fn) die("kernel not in the library", symbol);
    call->n_args = read_u32();
    call->args = calloc(call->n_args + 1, sizeof(TVMFFIAny));
    call->tensors = calloc(call->n_args + 1, sizeof(DLTensor));
    call->buffer_of = calloc(call->n_args + 1, sizeof(uint32_t));
    call->offset_of = calloc(call->n_args + 1, sizeof(uint64_t));
    for (uint32_t a = 0; a < call->n_args; ++a) {
      uint8_t kind;
      read_exact(&kind, 1);
      TVMFFIAny* arg = &call->args[a];
      if (kind == ARG_TENSOR) {
        DLTensor* t = &call->tensors[a];
        call->buffer_of[a] = read_u32();
        call->offset_of[a] = read_u64();
        if (call->buffer_of[a] >= n_buffers) die("bad buffer index", call->name);
        read_exact(&t->dtype.code, 1);
        read_exact(&t->dtype.bits, 1);
        read_exact(&t->dtype.lanes, 2);
        t->ndim = (int32_t)read_u32();
        t->shape = calloc((size_t)t->ndim + 1, sizeof(int64_t));
        read_exact(t->shape, sizeof(int64_t) * (size_t)t->ndim);
        t->device.device_type = kDLCPU;
        t->data = buffers[call->buffer_of[a]].data + call->offset_of[a];
        arg->type_index = kTVMFFIDLTensorPtr;
        arg->v_ptr = t;
      } else if (kind == ARG_INT) {
        arg->type_index = kTVMFFIInt;
        arg->v_int64 = (int64_t)read_u64();
      } else if (kind == ARG_FLOAT) {
        arg->type_index = kTVMFFIFloat;
        read_exact(&arg->v_float64, 8);
      } else {
        die("bad argument kind", call->name);
      }
    }
  }
  fclose(trace);

  long n = strtol(argv[4], NULL, 10);
  FILE* images = fopen(argv[3], "rb");
  FILE* out = fopen(argv[5], "wb");
  if (!images || !out) die("cannot open the images or the output file", NULL);
  for (long i = 0; i < n; ++i) {
    reset(buffers, n_buffers);
    if (fread(buffers[in_buffer].data + in_offset, 1, in_bytes, images) != in_bytes) die("short images", NULL);
    for (uint32_t c = 0; c < n_calls; ++c) {
      TVMFFIAny result;
      memset(&result, 0, sizeof result);
      if (calls[c].fn(NULL, calls[c].args, (int32_t)calls[c].n_args, &result) != 0) {
        die(calls[c].name, last_error);
      }
    }
    if (fwrite(buffers[out_buffer].data + out_offset, 1, out_bytes, out) != out_bytes) die("write", NULL);
  }
  fclose(images);
  fclose(out);
  printf("replayed %u kernel calls x %ld input(s)\n", n_calls, n);
  return 0;
}
