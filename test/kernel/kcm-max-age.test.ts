// maxConnectionAgeMs on the KCM transport, on a real kernel (run.sh): the stock Thrift client's
// call in flight at the age is answered, then the connection ends with a FIN.
import { describeMaxAge } from '../interop/max-age.js';

// A longer age than the host's: under TCG a first call can take longer than 300 ms.
describeMaxAge('kcm', `kernel ${process.env.KMUX_KERNEL_SERIES}`, 2000);
