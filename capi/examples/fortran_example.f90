! The proxystore C ABI from Fortran through the installed module `proxystore`
! (capi/fortran/proxystore.f90): store a real(8) array, read it back (copy into
! a Fortran array, and zero-copy through a library buffer), and resolve a
! proxy. Stops with a non-zero code on a mismatch.
!   gfortran fortran_example.f90 $(pkg-config --cflags --libs proxystore) -o fortran_example
!   ./fortran_example file:///dev/shm/ps-fortran

program fortran_example
  use iso_c_binding
  use proxystore
  implicit none
  integer, parameter :: n = 100000
  real(c_double), target :: values(n), back(n)
  integer(c_int8_t), pointer :: view(:)
  integer(c_int8_t) :: raw(8 * n)
  character(len=1024) :: url
  integer(c_int64_t) :: store
  type(ps_key) :: key
  type(ps_buffer) :: buf, wire, obj
  integer(c_size_t) :: got
  integer :: i

  call get_command_argument(1, url)
  if (len_trim(url) == 0) then
    print *, 'usage: fortran_example STORE_URL'
    error stop 2
  end if
  do i = 1, n
    values(i) = sqrt(real(i, c_double))
  end do

  call check(ps_store_open_url('fortran-example' // c_null_char, trim(url) // c_null_char, store), &
             'ps_store_open_url')
  call check(ps_put(store, c_loc(values), int(8 * n, c_size_t), key), 'ps_put')

  ! Copy into a Fortran array.
  call check(ps_get_into(store, key%text, c_loc(back), int(8 * n, c_size_t), got), 'ps_get_into')
  if (got /= 8 * n .or. any(back /= values)) error stop 'ps_get_into: content mismatch'

  ! Zero-copy: view the library's buffer (64-byte aligned) as a Fortran
  ! array, then free it.
  raw = transfer(values, raw)
  call check(ps_get(store, key%text, buf), 'ps_get')
  call c_f_pointer(buf%data, view, [8 * n])
  if (buf%len /= 8 * n .or. any(view /= raw)) error stop 'ps_get: content mismatch'
  call check(ps_buffer_free(buf), 'ps_buffer_free')
  if (ps_buffer_free(buf) == PS_OK) error stop 'a second ps_buffer_free was not reported'

  ! A proxy (bytes to send anywhere) and its resolution.
  call check(ps_proxy(store, c_loc(values), int(8 * n, c_size_t), .true._c_bool, wire), 'ps_proxy')
  call check(ps_proxy_resolve(wire%data, wire%len, obj), 'ps_proxy_resolve')
  call c_f_pointer(obj%data, view, [8 * n])
  if (obj%len /= 8 * n .or. any(view /= raw)) error stop 'ps_proxy_resolve: content mismatch'
  call check(ps_buffer_free(obj), 'ps_buffer_free')
  call check(ps_buffer_free(wire), 'ps_buffer_free')

  call check(ps_evict(store, key%text), 'ps_evict')
  if (ps_get(store, key%text, buf) /= PS_ERR_NOT_FOUND) error stop 'evicted object still found'
  call check(ps_store_close(store), 'ps_store_close')
  print '(a, i0, a)', 'fortran: ok (', n, ' doubles)'
contains

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(*), intent(in) :: what
    character(kind=c_char), pointer :: msg(:)
    integer :: n
    if (status /= PS_OK) then
      call c_f_pointer(ps_last_error(), msg, [4096])
      n = 0
      do while (msg(n + 1) /= c_null_char)
        n = n + 1
      end do
      print '(a, a, i0, a, 4096a)', what, ' failed with status ', status, ': ', msg(1:n)
      error stop 1
    end if
  end subroutine

end program
