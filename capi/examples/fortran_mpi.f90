! The module `proxystore` under MPI (mpiexec -n N, N >= 2): rank 0 stores a
! real(8) array and broadcasts its proxy (about 100 bytes); every other rank
! resolves it and reads it in place as a real(8) array; then rank 0
! evicts the object by its proxy, every rank sees it gone, and ps_finalize
! closes the library (later calls return PS_ERR_CLOSED).
!   mpif90 fortran_mpi.f90 $(pkg-config --cflags --libs proxystore) -o fortran_mpi
!   mpiexec -n 4 ./fortran_mpi file:///shared/dir/ps-fortran
program fortran_mpi
  use iso_c_binding
  use mpi_f08
  use proxystore
  implicit none
  integer, parameter :: n = 50000
  real(c_double), target :: values(n), got(n)
  integer(c_int8_t), allocatable, target :: wire(:)
  integer(c_int8_t), pointer :: view(:)
  real(c_double), pointer :: doubles(:)
  character(len=1024) :: url
  integer(c_int64_t) :: store
  type(ps_buffer) :: proxy, obj
  type(ps_key) :: key
  logical(c_bool) :: yes
  integer :: rank, nranks, wire_len, i

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  call get_command_argument(1, url)
  if (len_trim(url) == 0 .or. nranks < 2) then
    if (rank == 0) print *, 'usage: mpiexec -n N (N >= 2) fortran_mpi STORE_URL'
    call MPI_Abort(MPI_COMM_WORLD, 2)
  end if
  call check(ps_init(), 'ps_init')
  call check(ps_store_open_url('fortran-mpi' // c_null_char, trim(url) // c_null_char, store), &
             'ps_store_open_url')
  do i = 1, n
    values(i) = 0.5_c_double * i
  end do

  wire_len = 0
  if (rank == 0) then
    call check(ps_proxy(store, c_loc(values), int(8 * n, c_size_t), .false._c_bool, proxy), 'ps_proxy')
    wire_len = int(proxy%len)
  end if
  call MPI_Bcast(wire_len, 1, MPI_INTEGER, 0, MPI_COMM_WORLD)
  allocate(wire(wire_len))
  if (rank == 0) then
    call c_f_pointer(proxy%data, view, [wire_len])
    wire = view
    call check(ps_buffer_free(proxy), 'ps_buffer_free')
  end if
  call MPI_Bcast(wire, wire_len, MPI_INTEGER1, 0, MPI_COMM_WORLD)

  if (rank /= 0) then
    call check(ps_proxy_resolve(c_loc(wire), int(wire_len, c_size_t), obj), 'ps_proxy_resolve')
    if (obj%len /= 8 * n) error stop 'ps_proxy_resolve: wrong length'
    ! The data starts on a 64-byte boundary: read it in place as real(8).
    if (mod(transfer(obj%data, 0_c_intptr_t), 64_c_intptr_t) /= 0) error stop 'data not 64-byte aligned'
    call c_f_pointer(obj%data, doubles, [n])
    got = doubles
    call check(ps_buffer_free(obj), 'ps_buffer_free')
    if (any(got /= values)) error stop 'ps_proxy_resolve: content mismatch'
  end if

  call MPI_Barrier(MPI_COMM_WORLD)
  if (rank == 0) call check(ps_evict_proxy(c_loc(wire), int(wire_len, c_size_t)), 'ps_evict_proxy')
  call MPI_Barrier(MPI_COMM_WORLD)
  call check(ps_proxy_key(c_loc(wire), int(wire_len, c_size_t), key), 'ps_proxy_key')
  call check(ps_exists(store, key%text, yes), 'ps_exists')
  if (yes) error stop 'the object evicted by rank 0 still exists'

  call check(ps_finalize(), 'ps_finalize')
  if (ps_store_close(store) /= PS_ERR_CLOSED) error stop 'a call after ps_finalize was not PS_ERR_CLOSED'
  print '(a, i0, a, i0, a)', 'fortran mpi: rank ', rank, ' of ', nranks, ' ok'
  call MPI_Finalize()

contains

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(*), intent(in) :: what
    character(kind=c_char), pointer :: msg(:)
    integer :: m
    if (status /= PS_OK) then
      call c_f_pointer(ps_last_error(), msg, [4096])
      m = 0
      do while (msg(m + 1) /= c_null_char)
        m = m + 1
      end do
      print '(a, i0, a, a, a, i0, a, 4096a)', 'rank ', rank, ': ', what, ' failed with status ', &
        status, ': ', msg(1:m)
      error stop 1
    end if
  end subroutine

end program
