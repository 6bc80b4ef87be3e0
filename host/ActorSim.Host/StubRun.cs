using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;

namespace ActorSim.Host;

/// <summary>Stub main job until the host issue: one VMM with a vfio-pci GPU (16 MiB BAR0) and a VM
/// with 1 GiB of RAM; the guest reads a BAR page, a RAM page, and fetches an instruction from the BAR,
/// under each rule set (or the one given), through the domain's deciders in-process.</summary>
public static class StubRun
{
    public static int Execute(string[] args)
    {
        var kernels = new List<string>();
        bool fwb = true, dic = true;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--kernel":
                    if (i + 1 >= args.Length || !RuleSets.TryParse(args[i + 1], out _))
                    {
                        Console.Error.WriteLine($"actorsim run: --kernel needs 6.8, 6.9 or 6.17, not '{(i + 1 < args.Length ? args[i + 1] : "")}'");
                        return 2;
                    }
                    kernels.Add(args[++i]);
                    break;
                case "--no-fwb": fwb = false; break;
                case "--no-dic": dic = false; break;
                default:
                    Console.Error.WriteLine($"actorsim run: bad option '{args[i]}' (--kernel 6.8|6.9|6.17, --no-fwb, --no-dic)");
                    return 2;
            }
        }
        if (kernels.Count == 0) kernels.AddRange(["6.8", "6.9", "6.17"]);
        Console.WriteLine("run: stub (domain model in-process; actors and persistence are not built yet)");
        foreach (var k in kernels) RunOne(KernelPolicy.Of(k, fwb, dic));
        return 0;
    }

    private static void RunOne(KernelPolicy policy)
    {
        const ulong mib = 1UL << 20, ramGpa = 0x4000_0000, barGpa = 0x80_0000_0000;
        var k = new SyncKernel(policy);
        k.AddDevice(DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * mib, BarType.Mem64, true)]));
        k.AddVm(KvmVm.Create("vm1"));
        k.MmapRam(1024 * mib, null, out var ram);
        k.SetMemslot("vm1", 0, MemslotFlags.None, ramGpa, 1024 * mib, ram);
        k.MmapDevice("gpu0", 0, 0, 16 * mib, true, Prot.Read | Prot.Write, null, out var bar);
        k.SetMemslot("vm1", 1, MemslotFlags.None, barGpa, 16 * mib, bar);
        Console.WriteLine($"kernel {policy}: BAR0 VmFlags: {Smaps.VmFlagsLine(k.Mm.VmaLookup(bar)!.Flags).TrimEnd()}");
        Print("read  BAR0+0x1000", k.Access("vm1", 0, barGpa + 0x1000, AccessOp.Read), policy);
        Print("read  RAM +0x5000", k.Access("vm1", 0, ramGpa + 0x5000, AccessOp.Read), policy);
        Print("exec  BAR0+0x2000", k.Access("vm1", 0, barGpa + 0x2000, AccessOp.Exec), policy);
        var v = k.CheckInvariants();
        Console.WriteLine($"  invariants: {(v.Count == 0 ? "hold" : string.Join("; ", v))}");
    }

    private static void Print(string what, AccessResult r, KernelPolicy policy)
    {
        var o = r.Outcome;
        var type = o.Leaf is { } l && MemAttr.TypeOf(l.MemAttr, policy.Cpu.Fwb) is { } t ? MemAttr.MemTypeOf(t).Name() : "-";
        Console.WriteLine($"  {what}: {o.Result,-10} s2={type,-13} {o}");
    }
}
