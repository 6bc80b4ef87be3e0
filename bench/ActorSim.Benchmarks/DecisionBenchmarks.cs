using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Stage2;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace ActorSim.Benchmarks;

/// <summary>ns/op and allocations of the pure decision functions.</summary>
[MemoryDiagnoser]
public class DecisionBenchmarks
{
    private FaultInputs _barRead = null!;
    private FaultInputs _ramWrite = null!;
    private FaultInputs _exec = null!;

    [GlobalSetup]
    public void Setup()
    {
        const ulong hva = 0x7f00_0000_0000UL, gpa = 0x80_0000_1000UL;
        var slot = new Memslot(1, 0x80_0000_0000UL, 16UL << 20, hva, MemslotFlags.None);
        var flags = VmFlags.VM_READ | VmFlags.VM_WRITE | VmFlags.VM_SHARED | VmFlags.VM_IO | VmFlags.VM_PFNMAP | VmFlags.VM_ALLOW_ANY_UNCACHED;
        var vma = new VmaSnapshot(hva, hva + (16UL << 20), flags, 1, MairIndex.MT_DEVICE_nGnRnE);
        _barRead = new FaultInputs("vm1", 0, gpa, AccessOp.Read, false, 3, slot, hva + 0x1000, vma, hva + 0x1000,
            PfnLookup.Of(0x8000001, true), KernelPolicy.Of("6.9"), false, 40, 1, 1, 0, null);
        _ramWrite = _barRead with
        {
            Op = AccessOp.Write, Vma = vma with { Flags = VmFlags.VM_READ | VmFlags.VM_WRITE, S1 = MairIndex.MT_NORMAL },
            Pfn = PfnLookup.Of(0x90000, true),
        };
        _exec = _barRead with { Op = AccessOp.Exec };
    }

    [Benchmark] public FaultOutcome UserMemAbort_BarRead() => KvmHandleGuestAbort.Decide(_barRead);
    [Benchmark] public FaultOutcome UserMemAbort_RamWrite() => KvmHandleGuestAbort.Decide(_ramWrite);
    [Benchmark] public FaultOutcome UserMemAbort_ExecOnDevice() => KvmHandleGuestAbort.Decide(_exec);

    [Benchmark]
    public Errno Stage2SetProtAttr_NormalNc() =>
        Stage2SetProtAttr.Compute(KvmPgtableProt.KVM_PGTABLE_PROT_R | KvmPgtableProt.KVM_PGTABLE_PROT_W | KvmPgtableProt.KVM_PGTABLE_PROT_NORMAL_NC, RuleSet.V6_9, true, out _);

    [Benchmark] public MemType Combine_NormalWb_over_NormalNc() => CombineStages.Combine(MemType.NormalWB, MemAttr.MT_S2_NORMAL_NC, false);

    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(DecisionBenchmarks).Assembly).Run(args);
}
