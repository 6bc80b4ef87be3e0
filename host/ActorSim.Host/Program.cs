using ActorSim.Domain.Kernel;

namespace ActorSim.Host;

/// <summary>The <c>actorsim</c> command. So far <c>run</c> is a stub main job that drives the domain
/// model in-process (no actors, no database yet); <c>version</c> and <c>kernels</c> work; the other
/// commands come with the actors, persistence and host issues and say they are not built yet (exit 2).</summary>
public static class Program
{
    private static readonly string[] Planned = ["replay", "export", "import", "explain", "bench", "runs"];

    public static int Main(string[] args)
    {
        var cmd = args.Length == 0 ? "--help" : args[0];
        switch (cmd)
        {
            case "--help" or "-h" or "help":
                Console.WriteLine("usage: actorsim <command> [options]");
                Console.WriteLine("  run [--kernel 6.8|6.9|6.17] [--no-fwb] [--no-dic]");
                Console.WriteLine("            stub main job: a VFIO BAR and RAM faulted in-process under each rule set");
                Console.WriteLine("  scenario [--deterministic] FILE...");
                Console.WriteLine("            run scenario files through the actors (exit 0 all pass, 1 a check failed, 2 bad file)");
                Console.WriteLine("  version   print the version");
                Console.WriteLine("  kernels   list the modelled rule sets and what each decides for a VFIO BAR");
                Console.WriteLine($"  not built yet: {string.Join(", ", Planned)}");
                return 0;
            case "scenario":
                return ScenarioCommand.Execute(args[1..]).GetAwaiter().GetResult();
            case "run":
                return StubRun.Execute(args[1..]);
            case "version":
                Console.WriteLine($"actorsim {typeof(Program).Assembly.GetName().Version}");
                return 0;
            case "kernels":
                foreach (var label in new[] { "6.8", "6.9", "6.17" })
                {
                    var p = KernelPolicy.Of(label);
                    Console.WriteLine($"{label,-5} VFIO BAR mmap adds: {string.Join(" ", VmFlagBits.Names(p.AllowAnyUncachedFlag).DefaultIfEmpty("(no VM_ALLOW_ANY_UNCACHED)"))}");
                }
                return 0;
            default:
                Console.Error.WriteLine(Planned.Contains(cmd)
                    ? $"actorsim: '{cmd}' is not built yet"
                    : $"actorsim: unknown command '{cmd}' (try --help)");
                return 2;
        }
    }
}
