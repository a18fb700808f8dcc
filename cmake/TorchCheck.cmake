# Checks on the LibTorch that find_package(Torch) found, and what a CUDA LibTorch from a
# PyTorch wheel needs to link.
#
# 1. No silently mixed build. TorchConfig finds libtorch.so and libc10.so with find_library,
#    which searches the system paths before its own hint: with Debian's libtorch-dev
#    installed, a CMAKE_PREFIX_PATH of `torch.utils.cmake_prefix_path` gives 2.x headers and
#    Debian's 1.13 libraries. Every library must lie under TORCH_INSTALL_PREFIX.
# 2. A wheel's libtorch_cuda.so needs NCCL, cuSPARSELt, NVSHMEM and cuFile from the wheel's
#    nvidia-* dependencies (site-packages/nvidia/*/lib). Its RPATH finds them at run time;
#    the linker needs -rpath-link for them.
# Sets KDX_TORCH_CUDA (ON when LibTorch has CUDA) and KDX_TORCH_VERSION.
function(kdx_check_torch)
  get_filename_component(prefix "${TORCH_INSTALL_PREFIX}" REALPATH)
  set(libs ${TORCH_LIBRARIES} ${TORCH_LIBRARY} ${c10_LIBRARY})
  foreach(t torch torch_cpu torch_cuda c10 c10_cuda)
    if(TARGET ${t})
      list(APPEND libs ${t})
    endif()
  endforeach()
  set(bad "")
  foreach(lib ${libs})
    set(paths "")
    if(TARGET ${lib})
      get_target_property(type ${lib} TYPE)
      if(type STREQUAL "INTERFACE_LIBRARY")
        continue()
      endif()
      foreach(prop IMPORTED_LOCATION IMPORTED_LOCATION_RELEASE IMPORTED_LOCATION_RELWITHDEBINFO
                   IMPORTED_LOCATION_NOCONFIG)
        get_target_property(loc ${lib} ${prop})
        if(loc)
          list(APPEND paths ${loc})
        endif()
      endforeach()
    elseif(IS_ABSOLUTE "${lib}" AND lib MATCHES "(torch|c10)[^/]*\\.so")
      set(paths ${lib})
    endif()
    foreach(path ${paths})
      get_filename_component(real "${path}" REALPATH)
      string(FIND "${real}" "${prefix}/" at)
      if(NOT at EQUAL 0)
        list(APPEND bad "${lib} -> ${real}")
      endif()
    endforeach()
  endforeach()
  if(bad)
    list(REMOVE_DUPLICATES bad)
    list(JOIN bad "\n  " lines)
    message(FATAL_ERROR
      "LibTorch is mixed: found ${prefix}, but these libraries lie outside it:\n  ${lines}\n"
      "Point CMAKE_PREFIX_PATH at the LibTorch directory itself (for a PyTorch wheel: "
      "site-packages/torch, not torch/share/cmake), or set Torch_DIR.")
  endif()

  set(version "unknown")
  # 1.13: torch/version.h; 2.x: torch/headeronly/version.h (which torch/version.h includes).
  foreach(header ${TORCH_INCLUDE_DIRS})
    foreach(candidate "${header}/torch/version.h" "${header}/torch/headeronly/version.h")
      if(EXISTS "${candidate}")
        file(STRINGS "${candidate}" parts REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
        if(parts)
          string(REGEX REPLACE "[^;]*_(MAJOR|MINOR|PATCH) ([0-9]+)" "\\2" numbers "${parts}")
          list(JOIN numbers "." version)
        endif()
      endif()
    endforeach()
  endforeach()
  set(KDX_TORCH_VERSION "${version}" PARENT_SCOPE)

  if(TARGET torch_cuda)
    set(KDX_TORCH_CUDA ON PARENT_SCOPE)
    file(GLOB nvidia_libs LIST_DIRECTORIES true "${prefix}/../nvidia/*/lib" "${prefix}/../nvidia/*/*/lib")
    foreach(dir ${nvidia_libs})
      if(IS_DIRECTORY "${dir}")
        get_filename_component(dir "${dir}" REALPATH)
        add_link_options("LINKER:-rpath-link,${dir}")
      endif()
    endforeach()
    message(STATUS "kdx: LibTorch ${version} with CUDA at ${prefix}")
  else()
    set(KDX_TORCH_CUDA OFF PARENT_SCOPE)
    message(STATUS "kdx: LibTorch ${version} (CPU) at ${prefix}")
  endif()
endfunction()
