using ActorSim.Domain.Kernel;
using ActorSim.Domain.Simulation;

namespace ActorSim.Host.Commands;

/// <summary>`actorsim kernels [--no-fwb] [--no-dic]`: the modelled rule sets, the flag VFIO's BAR mmap sets
/// under each, and what each decides for a guest's first access to each kind of page
/// (<see cref="KernelComparison"/>: the model run, not a table written by hand).</summary>
public static class KernelsCommand
{
    public static int Execute(string[] args)
    {
        var a = Args.Parse("kernels", args, ["--no-fwb", "--no-dic"], []);
        if (a.Positional.Count > 0) throw new UsageException($"kernels: unexpected '{a.Positional[0]}'");
        bool fwb = !a.Has("--no-fwb"), dic = !a.Has("--no-dic");
        foreach (var label in KernelComparison.Kernels)
        {
            var p = KernelPolicy.Of(label);
            Console.WriteLine($"{label,-5} VFIO BAR mmap adds: {string.Join(" ", VmFlagBits.Names(p.AllowAnyUncachedFlag).DefaultIfEmpty("(no VM_ALLOW_ANY_UNCACHED)"))}");
        }
        var rows = KernelComparison.Rows(fwb, dic);
        Console.WriteLine();
        Console.WriteLine($"a guest's first access to a page, as each decides it (mmap, memslot, user_mem_abort; FWB {(fwb ? "on" : "off")}, DIC {(dic ? "on" : "off")}):");
        string[] header = ["page", "access", .. KernelComparison.Kernels];
        var table = rows.Select(r => (string[])[r.Page, r.Op.ToString().ToLowerInvariant(), .. r.Outcomes]).Prepend(header).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(c => table.Max(r => r[c].Length)).ToArray();
        foreach (var r in table)
            Console.WriteLine(string.Join("  ", r.Select((cell, c) => c == r.Length - 1 ? cell : cell.PadRight(widths[c]))));
        return 0;
    }
}
