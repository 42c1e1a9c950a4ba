! proxystore.f90: the Fortran module of the proxystore C ABI (libproxystore),
! iso_c_binding interfaces to every function of proxystore.h, its status
! codes and version. Installed with proxystore.h by scripts/install-capi.sh,
! which also builds proxystore.mod with gfortran; with another compiler:
!   $FC -c $PREFIX/include/proxystore.f90          (makes proxystore.mod)
! Then: use proxystore, and link with $(pkg-config --libs proxystore).
! The module has no procedures of its own: nothing to link but the library.
!
! Strings passed in end with c_null_char (trim(url) // c_null_char); keys
! come back NUL-terminated in ps_key%text. ps_buffer%data starts on a 64-byte
! boundary (objects this library wrote): c_f_pointer it to a real(8) array and
! read in place. See proxystore.h for what each call does.
module proxystore
  use iso_c_binding, only: c_int, c_int32_t, c_int64_t, c_size_t, c_ptr, c_char, c_bool
  implicit none
  private :: c_int, c_int32_t, c_int64_t, c_size_t, c_ptr, c_char, c_bool

  integer(c_int), parameter :: PS_VERSION_MAJOR = 0, PS_VERSION_MINOR = 2, PS_VERSION_PATCH = 0

  integer(c_int), parameter :: PS_OK = 0
  integer(c_int), parameter :: PS_ERR_NULL_ARGUMENT = 1
  integer(c_int), parameter :: PS_ERR_INVALID_ARGUMENT = 2
  integer(c_int), parameter :: PS_ERR_INVALID_HANDLE = 3
  integer(c_int), parameter :: PS_ERR_NOT_FOUND = 4
  integer(c_int), parameter :: PS_ERR_BUFFER_TOO_SMALL = 5
  integer(c_int), parameter :: PS_ERR_CONFIG = 6
  integer(c_int), parameter :: PS_ERR_DECODE = 7
  integer(c_int), parameter :: PS_ERR_CONNECTOR = 8
  integer(c_int), parameter :: PS_ERR_IO = 9
  integer(c_int), parameter :: PS_ERR_CLOSED = 10
  integer(c_int), parameter :: PS_ERR_UNSUPPORTED = 11
  integer(c_int), parameter :: PS_ERR_TOO_LARGE = 12
  integer(c_int), parameter :: PS_ERR_PANIC = 13
  integer(c_int), parameter :: PS_ERR_OTHER = 14

  integer, parameter :: PS_KEY_MAX = 1024

  ! An object's key as text, NUL-terminated.
  type, bind(c) :: ps_key
    character(kind=c_char) :: text(PS_KEY_MAX)
  end type

  ! A library-owned byte buffer: data(1:len) until ps_buffer_free; handle 0 = none.
  type, bind(c) :: ps_buffer
    type(c_ptr) :: data
    integer(c_size_t) :: len
    integer(c_int64_t) :: handle
  end type

  interface
    ! Library
    function ps_init() bind(c, name="ps_init")
      import :: c_int
      integer(c_int) :: ps_init
    end function
    function ps_finalize() bind(c, name="ps_finalize")
      import :: c_int
      integer(c_int) :: ps_finalize
    end function
    function ps_version() bind(c, name="ps_version")
      import :: c_ptr
      type(c_ptr) :: ps_version
    end function
    function ps_last_error() bind(c, name="ps_last_error")
      import :: c_ptr
      type(c_ptr) :: ps_last_error
    end function
    function ps_status_name(status) bind(c, name="ps_status_name")
      import :: c_ptr, c_int32_t
      integer(c_int32_t), value :: status
      type(c_ptr) :: ps_status_name
    end function
    function ps_live_handles(buffers, stores) bind(c, name="ps_live_handles")
      import :: c_int, c_size_t
      integer(c_size_t), intent(out) :: buffers, stores
      integer(c_int) :: ps_live_handles
    end function

    ! Stores
    function ps_store_open_url(name, url, store) bind(c, name="ps_store_open_url")
      import :: c_int, c_char, c_int64_t
      character(kind=c_char), intent(in) :: name(*), url(*)
      integer(c_int64_t), intent(out) :: store
      integer(c_int) :: ps_store_open_url
    end function
    function ps_store_open_config(toml, store) bind(c, name="ps_store_open_config")
      import :: c_int, c_char, c_int64_t
      character(kind=c_char), intent(in) :: toml(*)
      integer(c_int64_t), intent(out) :: store
      integer(c_int) :: ps_store_open_config
    end function
    function ps_store_open_config_file(path, store) bind(c, name="ps_store_open_config_file")
      import :: c_int, c_char, c_int64_t
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int64_t), intent(out) :: store
      integer(c_int) :: ps_store_open_config_file
    end function
    function ps_store_config(store, buf) bind(c, name="ps_store_config")
      import :: c_int, c_int64_t, ps_buffer
      integer(c_int64_t), value :: store
      type(ps_buffer), intent(out) :: buf
      integer(c_int) :: ps_store_config
    end function
    function ps_store_close(store) bind(c, name="ps_store_close")
      import :: c_int, c_int64_t
      integer(c_int64_t), value :: store
      integer(c_int) :: ps_store_close
    end function

    ! Objects
    function ps_put(store, data, len, key) bind(c, name="ps_put")
      import :: c_int, c_int64_t, c_ptr, c_size_t, ps_key
      integer(c_int64_t), value :: store
      type(c_ptr), value :: data
      integer(c_size_t), value :: len
      type(ps_key), intent(out) :: key
      integer(c_int) :: ps_put
    end function
    function ps_put_batch(store, data, lens, n, keys) bind(c, name="ps_put_batch")
      import :: c_int, c_int64_t, c_ptr, c_size_t, ps_key
      integer(c_int64_t), value :: store
      type(c_ptr), intent(in) :: data(*)
      integer(c_size_t), intent(in) :: lens(*)
      integer(c_size_t), value :: n
      type(ps_key), intent(out) :: keys(*)
      integer(c_int) :: ps_put_batch
    end function
    function ps_get(store, key, buf) bind(c, name="ps_get")
      import :: c_int, c_int64_t, c_char, ps_buffer
      integer(c_int64_t), value :: store
      character(kind=c_char), intent(in) :: key(*)
      type(ps_buffer), intent(out) :: buf
      integer(c_int) :: ps_get
    end function
    function ps_get_into(store, key, dst, cap, len) bind(c, name="ps_get_into")
      import :: c_int, c_int64_t, c_char, c_ptr, c_size_t
      integer(c_int64_t), value :: store
      character(kind=c_char), intent(in) :: key(*)
      type(c_ptr), value :: dst
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: len
      integer(c_int) :: ps_get_into
    end function
    function ps_get_batch(store, keys, n, bufs) bind(c, name="ps_get_batch")
      import :: c_int, c_int64_t, c_ptr, c_size_t, ps_buffer
      integer(c_int64_t), value :: store
      type(c_ptr), intent(in) :: keys(*)
      integer(c_size_t), value :: n
      type(ps_buffer), intent(out) :: bufs(*)
      integer(c_int) :: ps_get_batch
    end function
    function ps_exists(store, key, yes) bind(c, name="ps_exists")
      import :: c_int, c_int64_t, c_char, c_bool
      integer(c_int64_t), value :: store
      character(kind=c_char), intent(in) :: key(*)
      logical(c_bool), intent(out) :: yes
      integer(c_int) :: ps_exists
    end function
    function ps_evict(store, key) bind(c, name="ps_evict")
      import :: c_int, c_int64_t, c_char
      integer(c_int64_t), value :: store
      character(kind=c_char), intent(in) :: key(*)
      integer(c_int) :: ps_evict
    end function
    function ps_buffer_free(buf) bind(c, name="ps_buffer_free")
      import :: c_int, ps_buffer
      type(ps_buffer), intent(inout) :: buf
      integer(c_int) :: ps_buffer_free
    end function

    ! Proxies
    function ps_proxy(store, data, len, evict, buf) bind(c, name="ps_proxy")
      import :: c_int, c_int64_t, c_ptr, c_size_t, c_bool, ps_buffer
      integer(c_int64_t), value :: store
      type(c_ptr), value :: data
      integer(c_size_t), value :: len
      logical(c_bool), value :: evict
      type(ps_buffer), intent(out) :: buf
      integer(c_int) :: ps_proxy
    end function
    function ps_proxy_resolve(proxy, len, buf) bind(c, name="ps_proxy_resolve")
      import :: c_int, c_ptr, c_size_t, ps_buffer
      type(c_ptr), value :: proxy
      integer(c_size_t), value :: len
      type(ps_buffer), intent(out) :: buf
      integer(c_int) :: ps_proxy_resolve
    end function
    function ps_proxy_key(proxy, len, key) bind(c, name="ps_proxy_key")
      import :: c_int, c_ptr, c_size_t, ps_key
      type(c_ptr), value :: proxy
      integer(c_size_t), value :: len
      type(ps_key), intent(out) :: key
      integer(c_int) :: ps_proxy_key
    end function
    function ps_evict_proxy(proxy, len) bind(c, name="ps_evict_proxy")
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: proxy
      integer(c_size_t), value :: len
      integer(c_int) :: ps_evict_proxy
    end function
  end interface
end module
