export { moltVersion } from '../../version.js'
