"""The whitelists: which torch functions, tensor methods, attributes and syntax the language admits."""
from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

# ---------------------------------------------------------------- whitelists (public: pages list them)

CREATION_FUNCTIONS = frozenset({
    "tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye",
    "rand", "randn", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
    "rand_like", "randn_like", "randint_like",
})
TORCH_FUNCTIONS = CREATION_FUNCTIONS | frozenset({
    # elementwise math
    "abs", "neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos",
    "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "sigmoid", "relu", "floor", "ceil",
    "round", "trunc", "frac", "sign", "clamp", "clip", "pow", "square", "reciprocal", "add", "sub", "mul",
    "div", "true_divide", "floor_divide", "remainder", "fmod", "maximum", "minimum", "lerp", "erf",
    "logit", "nan_to_num", "where", "isnan", "isinf", "isfinite", "eq", "ne", "lt", "le", "gt", "ge",
    "equal", "allclose", "isclose", "logical_and", "logical_or", "logical_not", "logical_xor",
    # reductions and sorting
    "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "cumsum",
    "cumprod", "norm", "logsumexp", "median", "all", "any", "count_nonzero", "sort", "argsort", "topk",
    "unique", "softmax", "log_softmax", "dist",
    # linear algebra and joining
    "matmul", "mm", "bmm", "mv", "dot", "inner", "outer", "tensordot", "kron", "cross", "trace", "diag",
    "diagonal", "tril", "triu", "det", "inverse", "cdist", "cat", "concat", "concatenate", "stack",
    "hstack", "vstack", "split", "chunk", "unbind",
    # shape and indexing
    "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "flip", "roll", "narrow",
    "select", "index_select", "gather", "masked_select", "nonzero", "argwhere", "broadcast_to",
    "broadcast_tensors", "broadcast_shapes", "movedim", "tile", "meshgrid", "searchsorted", "bucketize",
    "as_strided",
    # introspection and misc
    "numel", "is_tensor", "is_floating_point", "result_type", "promote_types", "can_cast", "finfo",
    "iinfo", "manual_seed",
})
TORCH_ATTRIBUTES = frozenset({
    "float16", "half", "bfloat16", "float32", "float", "float64", "double", "complex64", "cfloat",
    "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long", "bool",
    "pi", "e", "inf", "nan", "nn", "linalg",
})
NN_FUNCTIONS = frozenset({
    "relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "leaky_relu", "elu", "softplus",
    "cross_entropy", "mse_loss", "l1_loss", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "linear", "normalize", "one_hot", "dropout", "pad",
})
LINALG_FUNCTIONS = frozenset({
    "norm", "vector_norm", "matrix_norm", "det", "inv", "solve", "qr", "svd", "svdvals", "eigh",
    "eigvalsh", "cholesky", "pinv", "matrix_rank",
})
TENSOR_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "contiguous", "clone",
    "detach", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "int", "long", "short", "bool",
    "byte", "type_as", "requires_grad_", "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin",
    "argmax", "argmin", "cumsum", "cumprod", "norm", "logsumexp", "median", "all", "any", "count_nonzero",
    "softmax", "log_softmax", "abs", "neg", "exp", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin",
    "cos", "tan", "tanh", "sigmoid", "relu", "floor", "ceil", "round", "trunc", "sign", "clamp", "clip",
    "pow", "square", "reciprocal", "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod",
    "matmul", "mm", "bmm", "mv", "dot", "outer", "maximum", "minimum", "lerp", "nan_to_num", "eq", "ne",
    "lt", "le", "gt", "ge", "equal", "allclose", "isclose", "isnan", "isinf", "logical_and", "logical_or",
    "logical_not", "where", "masked_fill", "masked_select", "nonzero", "argwhere", "gather",
    "index_select", "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "repeat",
    "tile", "flip", "roll", "narrow", "select", "split", "chunk", "unbind", "movedim", "unfold",
    "as_strided", "diag", "diagonal", "tril", "triu", "trace", "topk", "sort", "argsort", "unique",
    "size", "dim", "numel", "nelement", "element_size", "stride", "storage_offset", "is_contiguous",
    "is_floating_point", "is_complex", "item", "tolist", "new_zeros", "new_ones", "new_full",
    "new_empty", "new_tensor",
})
TENSOR_ATTRIBUTES = frozenset({
    "shape", "dtype", "device", "ndim", "T", "mT", "H", "mH", "requires_grad", "is_leaf", "grad",
    "is_cuda", "real", "imag", "itemsize", "nbytes",
})
STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "replace", "split", "count",
    "find", "isdigit", "isalpha", "isspace", "title",
})
BUILTINS = frozenset({"len", "abs", "min", "max", "round", "int", "float", "str", "bool", "sum", "range"})
_DTYPE_ATTRIBUTES = frozenset({"is_floating_point", "is_complex", "is_signed", "itemsize"})
_INFO_ATTRIBUTES = frozenset({"eps", "max", "min", "tiny", "bits", "resolution"})
_RESULT_ATTRIBUTES = frozenset({"values", "indices"})
# every method name anywhere, and every non-call attribute anywhere: the static check uses these
_CALLABLE_NAMES = TORCH_FUNCTIONS | NN_FUNCTIONS | LINALG_FUNCTIONS | TENSOR_METHODS | STR_METHODS | {"no_grad"}
_VALUE_NAMES = (TORCH_ATTRIBUTES | TENSOR_ATTRIBUTES | _DTYPE_ATTRIBUTES | _INFO_ATTRIBUTES
                | _RESULT_ATTRIBUTES | {"functional", "type", "index"})
# ops that hand out uninitialised memory (whatever the allocator last held: another user's values) run as their
# zero-filling twin; UNINITIALISED lists torch's others, none of which may join a whitelist (a test checks)
ZERO_FILLED = {"empty": "zeros", "empty_like": "zeros_like", "new_empty": "new_zeros"}
UNINITIALISED = frozenset({*ZERO_FILLED, "empty_strided", "new_empty_strided", "empty_permuted", "resize",
                           "resize_", "resize_as", "resize_as_", "resize_as_sparse_", "set_", "new", "storage",
                           "untyped_storage", "from_file", "Tensor", "FloatTensor", "UntypedStorage",
                           "TypedStorage", "empty_quantized"})
MAX_DIMS = 64  # a tensor with more dimensions is refused (torch.zeros([1] * 10**5) is legal but pathological)
MAX_OP_TENSORS = 10_000  # tensors one call may take in a list (torch.cat / stack): its dry run costs ~10 µs each
# conservative sustained float32 rates for the time estimate (float64 counts double)
CPU_FLOPS_PER_S = 5e9
GPU_FLOPS_PER_S = 2e12
MAX_INT_BITS = 100_000  # Python ints past this (e.g. 10 ** 10 ** 6) are refused before computing

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b, ast.MatMult: lambda a, b: a @ b, ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b, ast.BitXor: lambda a, b: a ^ b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: not a, ast.Invert: lambda a: ~a,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b, ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_EXPR_NODES = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Attribute,
               ast.Subscript, ast.Slice, ast.Name, ast.Constant, ast.List, ast.Tuple, ast.keyword)
_OPERATOR_NODES = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
_REFUSED = {
    ast.Lambda: "lambda is not allowed", ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed", ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed", ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed", ast.NamedExpr: "the walrus operator := is not allowed",
    ast.Starred: "star-arguments (*x) are not allowed", ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed", ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed", ast.YieldFrom: "yield is not allowed",
    ast.Dict: "dict literals are not allowed", ast.Set: "set literals are not allowed",
    ast.LShift: "bit shifts are not allowed", ast.RShift: "bit shifts are not allowed",
    ast.AugAssign: "augmented assignment (x += 1) is not allowed; write x = x + 1",
}


