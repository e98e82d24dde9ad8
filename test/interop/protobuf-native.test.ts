// The protobuf example service on the native transport: the addon's I/O thread splits the
// envelopes' frames; kmux's client and the Python client, statuses and deadlines from the
// workers' codec half.
import { describeProtobufOverKernel } from './protobuf-kernel.js';

describeProtobufOverKernel('native');
